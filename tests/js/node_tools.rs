//! Running the Node.js tools of this folder from Rust tests; included by the test suites of
//! `tessera-server` and `tessera` with `#[path]` (both sit two levels below the repository).

use std::path::PathBuf;
use std::process::{Command, Stdio};

/// `tests/js` of the repository.
pub fn js_dir() -> PathBuf {
    // Read at run time: a test binary reused from a build cache shared by several checkouts
    // must look at the checkout it runs in, not the one it was compiled in.
    PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR for tests"),
    )
    .join("../../tests/js")
}

/// Whether a check needing Node.js with `modules` (and Chromium, if asked) can run. On a
/// developer machine without them the test is skipped with the reason; under `CI=true` it must
/// run, so a missing tool fails it.
pub fn js_tools_available(test: &str, modules: &[&str], chromium: bool) -> bool {
    let node = Command::new("node").arg("--version").output().is_ok_and(|o| o.status.success());
    let missing_module = modules.iter().find(|m| !js_dir().join("node_modules").join(m).exists());
    let chromium_path = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let reason = if !node {
        "node is not installed".to_owned()
    } else if let Some(m) = missing_module {
        format!("tests/js/node_modules/{m} is missing (run `npm ci --prefix tests/js`)")
    } else if chromium && !std::path::Path::new(&chromium_path).exists() {
        format!("Chromium is not installed at {chromium_path} (Debian package `chromium`)")
    } else {
        return true;
    };
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI=true but {test} cannot run: {reason}"
    );
    eprintln!("skipping {test}: {reason}");
    false
}

/// `node tests/js/SCRIPT ARGS…` (blocking); its stdout, or the test fails with its output.
pub fn run_node(script: &str, args: &[String]) -> String {
    let output = Command::new("node")
        .arg(js_dir().join(script))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run node: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{script} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}
