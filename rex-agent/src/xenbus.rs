//! Writes to xenstore from inside a guest, over the kernel's xenbus device
//! (`/dev/xen/xenbus`), in xenstore's own wire format
//! (`xen/include/public/io/xs_wire.h`): a 16-byte header — type, request
//! id, transaction id, payload length, each a native-endian u32 — then the
//! payload. No libxenstore, so the agent is one static binary.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};

/// The guest's xenbus device (xenfs's `xenbus` file on old kernels).
pub const DEVICES: &[&str] = &["/dev/xen/xenbus", "/proc/xen/xenbus"];

const XS_WRITE: u32 = 11;
const XS_ERROR: u32 = 16;
/// Xen's limit on a payload (XENSTORE_PAYLOAD_MAX).
const PAYLOAD_MAX: usize = 4096;

/// A request: header and payload, as written in one `write`.
pub fn encode(kind: u32, req_id: u32, payload: &[u8]) -> Vec<u8> {
    let mut msg = Vec::with_capacity(16 + payload.len());
    for word in [kind, req_id, 0, payload.len() as u32] {
        msg.extend_from_slice(&word.to_ne_bytes());
    }
    msg.extend_from_slice(payload);
    msg
}

/// The payload of a write of `value` at `path` (relative paths are under
/// the guest's own `/local/domain/<id>/`).
pub fn write_payload(path: &str, value: &str) -> Vec<u8> {
    let mut payload = Vec::with_capacity(path.len() + 1 + value.len());
    payload.extend_from_slice(path.as_bytes());
    payload.push(0);
    payload.extend_from_slice(value.as_bytes());
    payload
}

/// A reply's header: (type, request id, payload length).
pub fn decode_header(header: &[u8; 16]) -> (u32, u32, usize) {
    let word = |i: usize| u32::from_ne_bytes(header[i * 4..i * 4 + 4].try_into().unwrap());
    (word(0), word(1), word(3) as usize)
}

/// An open connection to xenstore.
pub struct Xenbus {
    dev: File,
    next_id: u32,
}

impl Xenbus {
    pub fn open() -> io::Result<Self> {
        let mut last = io::Error::from(io::ErrorKind::NotFound);
        for path in DEVICES {
            match OpenOptions::new().read(true).write(true).open(path) {
                Ok(dev) => return Ok(Self { dev, next_id: 1 }),
                Err(e) => last = io::Error::new(e.kind(), format!("{path}: {e}")),
            }
        }
        Err(last)
    }

    /// Writes `value` at `path` and waits for xenstore's answer.
    pub fn write(&mut self, path: &str, value: &str) -> io::Result<()> {
        let payload = write_payload(path, value);
        if payload.len() > PAYLOAD_MAX {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "value too long",
            ));
        }
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        self.dev.write_all(&encode(XS_WRITE, id, &payload))?;
        loop {
            let mut header = [0u8; 16];
            self.dev.read_exact(&mut header)?;
            let (kind, reply_id, len) = decode_header(&header);
            if len > PAYLOAD_MAX {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "reply too long"));
            }
            let mut body = vec![0u8; len];
            self.dev.read_exact(&mut body)?;
            if reply_id != id {
                continue; // a watch event or a stale reply: not ours
            }
            return match kind {
                XS_ERROR => Err(io::Error::other(format!(
                    "xenstore write {path}: {}",
                    String::from_utf8_lossy(&body).trim_end_matches('\0')
                ))),
                _ => Ok(()),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_is_header_then_path_nul_value() {
        let msg = encode(XS_WRITE, 7, &write_payload("data/meminfo_free", "1234"));
        assert_eq!(msg.len(), 16 + 17 + 1 + 4);
        let header: [u8; 16] = msg[..16].try_into().unwrap();
        assert_eq!(decode_header(&header), (XS_WRITE, 7, 22));
        assert_eq!(&msg[16..], b"data/meminfo_free\x001234");
    }
}
