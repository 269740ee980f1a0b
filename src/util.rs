//! Small helpers every command shares: atomic writes and progress bars.

use std::io::Write;
use std::path::Path;

use indicatif::{ProgressBar, ProgressStyle};

/// Write `bytes` to `path` so that readers see either the old file or the whole new one:
/// write a temporary file in the same folder, flush it to disk, then rename it into place.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".into());
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// A progress bar in the project's one style; hidden when stderr is not a terminal
/// unless `RMTK_PROGRESS=1`.
pub fn progress_bar(len: u64, what: &str) -> ProgressBar {
    let bar = if console_wanted() {
        ProgressBar::new(len)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix:>10.bold} [{elapsed_precise}] {bar:30.cyan/blue} {pos}/{len} {msg} (eta {eta})",
        )
        .expect("the template is valid")
        .progress_chars("=> "),
    );
    bar.set_prefix(what.to_string());
    bar
}

fn console_wanted() -> bool {
    use std::io::IsTerminal;
    std::env::var("RMTK_PROGRESS")
        .map(|v| v == "1")
        .unwrap_or(false)
        || std::io::stderr().is_terminal()
}
