//! Locating the shared data set (`../shared/data`) for augur's tests.

use std::io::Write;
use std::path::PathBuf;

/// `$AUGUR_SHARED_DATA`, else `../shared/data` beside the source tree, if it is there. When it
/// is not, says so on the real standard error: the test harness captures `eprintln!` of passing
/// tests, and a skipped check must not pass silently.
pub fn shared_data() -> Option<PathBuf> {
    let path = std::env::var_os("AUGUR_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data"));
    if path.is_dir() {
        Some(path)
    } else {
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: shared data not found at {} (set AUGUR_SHARED_DATA); the tests that read it pass without checking",
            path.display()
        );
        None
    }
}
