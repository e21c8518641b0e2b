//! The Xen lab (tests/xen-lab/run.sh --short) as a cargo test.
//!
//! It boots Xen 4.17 under QEMU and takes 10–20 minutes as root, so it is
//! ignored by default: `sudo cargo test --release --test xen_lab -- --ignored`.
//! The verdicts and figures are in target/xen-lab/summary-short.md.

use std::path::Path;
use std::process::Command;

#[test]
#[ignore = "boots Xen under QEMU: root, 10-20 minutes; run with --ignored"]
fn rex_meets_the_sla_and_survives_faults_on_real_xen() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let status = Command::new(root.join("tests/xen-lab/run.sh"))
        .arg("--short")
        .current_dir(root)
        .status()
        .expect("tests/xen-lab/run.sh could not be started");
    assert!(
        status.success(),
        "the Xen lab failed ({status}); see target/xen-lab/summary-short.md and console-short.log"
    );
}
