//! The bundled font: DejaVu Sans, regular and bold (`assets/fonts/`, with its provenance and
//! license), registered once with plotters as its `sans-serif` family, so that every figure
//! looks the same whatever the machine has installed.

use std::sync::OnceLock;

use plotters::style::{FontStyle, register_font};

static REGULAR: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
static BOLD: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans-Bold.ttf");

/// The family name the figures ask for (`FontFamily::SansSerif`); SVG files name it too,
/// so a viewer without DejaVu Sans uses its own sans-serif.
pub const FAMILY: &str = "sans-serif";

/// Register the bundled fonts (once per process). Fails only if a bundled file is not a
/// font, which the tests would catch.
pub fn register() -> Result<(), String> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        register_font(FAMILY, FontStyle::Normal, REGULAR).is_ok()
            && register_font(FAMILY, FontStyle::Bold, BOLD).is_ok()
    });
    if ok {
        Ok(())
    } else {
        Err("the bundled DejaVu Sans font could not be read".into())
    }
}
