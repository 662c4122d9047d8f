//! A drawn frame as text (for snapshots) or as SVG in the theme's colours (for
//! `ecca screenshot` and the docs).

use super::theme::{Role, Theme};
use ratatui::buffer::Buffer;
use ratatui::style::{Color, Modifier};

/// The frame's characters, one line per row, trailing spaces kept.
pub fn text(buffer: &Buffer) -> String {
    let area = buffer.area;
    let mut out = String::new();
    for y in 0..area.height {
        for x in 0..area.width {
            out.push_str(buffer[(x, y)].symbol());
        }
        out.push('\n');
    }
    out
}

fn hex(c: Color) -> Option<String> {
    let rgb = match c {
        Color::Rgb(r, g, b) => (r, g, b),
        Color::Black => (0, 0, 0),
        Color::Red => (205, 49, 49),
        Color::Green => (13, 188, 121),
        Color::Yellow => (229, 229, 16),
        Color::Blue => (36, 114, 200),
        Color::Magenta => (188, 63, 188),
        Color::Cyan => (17, 168, 205),
        Color::Gray => (204, 204, 204),
        Color::DarkGray => (118, 118, 118),
        Color::White => (255, 255, 255),
        _ => return None,
    };
    Some(format!("#{:02x}{:02x}{:02x}", rgb.0, rgb.1, rgb.2))
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

const CELL_W: f64 = 8.4;
const CELL_H: f64 = 17.0;

/// The frame as an SVG picture.
pub fn svg(buffer: &Buffer, theme: &Theme) -> String {
    let area = buffer.area;
    let default_fg = theme
        .color(Role::Text)
        .and_then(hex)
        .unwrap_or_else(|| "#d0d0d0".into());
    let default_bg = theme
        .background()
        .and_then(hex)
        .unwrap_or_else(|| "#111111".into());
    let (w, h) = (area.width as f64 * CELL_W, area.height as f64 * CELL_H);
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w:.0}\" height=\"{h:.0}\" viewBox=\"0 0 {w:.1} {h:.1}\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"{default_bg}\"/>\n\
         <g font-family=\"DejaVu Sans Mono, Menlo, Consolas, monospace\" font-size=\"14\" xml:space=\"preserve\">\n"
    );
    for y in 0..area.height {
        let ty = y as f64 * CELL_H;
        // Backgrounds first, merged into runs.
        let mut x = 0;
        while x < area.width {
            let cell = &buffer[(x, y)];
            let reversed = cell.modifier.contains(Modifier::REVERSED);
            let bg = if reversed {
                hex(cell.fg).or(Some(default_fg.clone()))
            } else {
                hex(cell.bg)
            };
            let start = x;
            while x < area.width && {
                let c = &buffer[(x, y)];
                let r = c.modifier.contains(Modifier::REVERSED);
                (if r {
                    hex(c.fg).or(Some(default_fg.clone()))
                } else {
                    hex(c.bg)
                }) == bg
            } {
                x += 1;
            }
            if let Some(color) = bg.filter(|c| *c != default_bg) {
                out.push_str(&format!(
                    "<rect x=\"{:.1}\" y=\"{ty:.1}\" width=\"{:.1}\" height=\"{CELL_H}\" fill=\"{color}\"/>\n",
                    start as f64 * CELL_W,
                    (x - start) as f64 * CELL_W
                ));
            }
        }
        // Text in runs of one style; each run placed at its column.
        let mut x = 0;
        while x < area.width {
            let cell = &buffer[(x, y)];
            let style = (cell.fg, cell.modifier);
            let start = x;
            let mut run = String::new();
            while x < area.width && (buffer[(x, y)].fg, buffer[(x, y)].modifier) == style {
                run.push_str(buffer[(x, y)].symbol());
                x += 1;
            }
            if run.trim().is_empty() {
                continue;
            }
            let reversed = style.1.contains(Modifier::REVERSED);
            let fill = if reversed {
                default_bg.clone()
            } else {
                hex(style.0).unwrap_or_else(|| default_fg.clone())
            };
            let weight = if style.1.contains(Modifier::BOLD) {
                " font-weight=\"bold\""
            } else {
                ""
            };
            out.push_str(&format!(
                "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"{fill}\"{weight} textLength=\"{:.1}\" lengthAdjust=\"spacingAndGlyphs\">{}</text>\n",
                start as f64 * CELL_W,
                ty + CELL_H * 0.78,
                (x - start) as f64 * CELL_W,
                escape(&run)
            ));
        }
    }
    out.push_str("</g>\n</svg>\n");
    out
}
