//! The files rex is given to read (policy, scenarios, benchmark CSVs):
//! regular files only, of bounded size, as text libxlutil can parse safely.
//! A FIFO or `/dev/zero` as the policy would otherwise hang a reload or
//! exhaust memory, and a NUL byte inside a quoted string makes libxlutil
//! abort the whole process (inside `xl` too).

use std::fs::OpenOptions;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// The largest input file rex reads: room for a policy of 100,000 domains
/// (about 9 MiB written one domain a line with an SLA and four bounds).
pub const MAX_INPUT_BYTES: u64 = 16 << 20;

/// Reads `path` as text for a parser: a regular file of at most
/// [`MAX_INPUT_BYTES`], valid UTF-8, with no NUL byte. A UTF-8 byte-order
/// mark is dropped and CRLF line ends read as LF (files edited on Windows
/// are common and harmless). Errors name the file, and the line where the
/// text is at fault.
pub fn read_text_file(path: &Path) -> Result<String, String> {
    let name = path.display().to_string();
    // O_NONBLOCK: opening a FIFO for reading would wait for a writer.
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| format!("{name}: {e}"))?;
    let meta = file.metadata().map_err(|e| format!("{name}: {e}"))?;
    if !meta.is_file() {
        return Err(format!("{name}: not a regular file"));
    }
    if meta.len() > MAX_INPUT_BYTES {
        return Err(too_large(&name));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(MAX_INPUT_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("{name}: {e}"))?;
    if bytes.len() as u64 > MAX_INPUT_BYTES {
        // It grew while being read.
        return Err(too_large(&name));
    }
    text_from_bytes(&name, bytes)
}

/// What [`read_text_file`] does with the bytes it read: valid UTF-8 with no
/// NUL, BOM dropped, CRLF read as LF. (Also what the fuzz targets feed.)
pub fn text_from_bytes(name: &str, bytes: Vec<u8>) -> Result<String, String> {
    let text = String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let line = line_of(e.as_bytes(), at);
        format!("{name}:{line}: not valid UTF-8 text")
    })?;
    clean_text(name, &text)
}

/// Checks and normalises text about to be parsed (see [`read_text_file`]);
/// `name` is the file name for messages.
pub fn clean_text(name: &str, text: &str) -> Result<String, String> {
    if let Some(at) = text.find('\0') {
        let line = line_of(text.as_bytes(), at);
        return Err(format!("{name}:{line}: contains a NUL byte"));
    }
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    Ok(if text.contains("\r\n") {
        text.replace("\r\n", "\n")
    } else {
        text.to_string()
    })
}

fn too_large(name: &str) -> String {
    format!(
        "{name}: larger than {} MiB, the most rex reads",
        MAX_INPUT_BYTES >> 20
    )
}

/// The 1-based line of byte offset `at`.
fn line_of(bytes: &[u8], at: usize) -> usize {
    bytes[..at.min(bytes.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str, bytes: &[u8]) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("rex-input-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    #[test]
    fn a_nul_byte_is_an_error_with_its_line() {
        let path = temp("nul.cfg", b"interval = 1000\nslush = \"32M\0x\"\n");
        let err = read_text_file(&path).unwrap_err();
        assert!(err.ends_with("nul.cfg:2: contains a NUL byte"), "{err}");
    }

    #[test]
    fn invalid_utf8_is_an_error_with_its_line() {
        let path = temp("latin1.cfg", b"a = 1\nb = 2\nname = \"caf\xe9\"\n");
        let err = read_text_file(&path).unwrap_err();
        assert!(err.ends_with("latin1.cfg:3: not valid UTF-8 text"), "{err}");
    }

    #[test]
    fn bom_and_crlf_are_read_as_plain_text() {
        let path = temp("dos.cfg", b"\xef\xbb\xbfa = 1\r\nb = 2\r\n");
        assert_eq!(read_text_file(&path).unwrap(), "a = 1\nb = 2\n");
    }

    #[test]
    fn only_regular_files_of_bounded_size_are_read() {
        let err = read_text_file(Path::new("/dev/zero")).unwrap_err();
        assert_eq!(err, "/dev/zero: not a regular file");
        let dir = std::env::temp_dir();
        let err = read_text_file(&dir).unwrap_err();
        assert!(err.ends_with("not a regular file"), "{err}");
        let fifo = std::env::temp_dir().join(format!("rex-input-fifo-{}", std::process::id()));
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        // Without a writer this would block forever if it were opened
        // blocking.
        let err = read_text_file(&fifo).unwrap_err();
        std::fs::remove_file(&fifo).unwrap();
        assert!(err.ends_with("not a regular file"), "{err}");
        let big = temp("big.cfg", &vec![b'#'; MAX_INPUT_BYTES as usize + 1]);
        let err = read_text_file(&big).unwrap_err();
        assert!(
            err.ends_with("larger than 16 MiB, the most rex reads"),
            "{err}"
        );
    }
}
