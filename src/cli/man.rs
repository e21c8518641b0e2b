//! `rex man DIR`: writes rex's man pages, generated from the clap
//! definitions so they cannot drift from the options: rex(8) and one page
//! per subcommand, rex-SUBCOMMAND(8). Used by the Debian packaging; hidden
//! from `rex --help`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Directory to write rex.8 and rex-SUBCOMMAND.8 to (created if missing)
    pub dir: PathBuf,
}

pub fn main(args: Args, command: clap::Command) -> ExitCode {
    match write_pages(&args.dir, command) {
        Ok(pages) => {
            for page in pages {
                println!("{}", page.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("rex man: {e}");
            ExitCode::FAILURE
        }
    }
}

/// One page for `command` and one for each visible subcommand; returns
/// their paths.
fn write_pages(dir: &Path, command: clap::Command) -> Result<Vec<PathBuf>, String> {
    fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut command = command;
    // Built, a command's subcommands carry the help and version flags.
    command.build();
    let mut pages = vec![write_page(dir, "rex", command.clone())?];
    // Not clap's own `help` subcommand, nor hidden ones (this one).
    let documented = |s: &&clap::Command| !s.is_hide_set() && s.get_name() != "help";
    for sub in command.get_subcommands().filter(documented) {
        let name = format!("rex-{}", sub.get_name());
        let sub = sub
            .clone()
            .name(name.clone())
            .version(env!("CARGO_PKG_VERSION"));
        pages.push(write_page(dir, &name, sub)?);
    }
    Ok(pages)
}

fn write_page(dir: &Path, name: &str, command: clap::Command) -> Result<PathBuf, String> {
    let path = dir.join(format!("{name}.8"));
    let mut roff = Vec::new();
    clap_mangen::Man::new(command)
        .section("8")
        .manual("System Administration")
        .source(format!("rex {}", env!("CARGO_PKG_VERSION")))
        .render(&mut roff)
        .map_err(|e| format!("rendering {name}.8: {e}"))?;
    fs::write(&path, roff).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}
