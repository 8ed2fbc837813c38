//! Inline SVG pieces for the status page and the evidence report:
//! HTML escaping, a ring gauge, and a burn-rate bar chart with threshold
//! lines. Pure string building, no I/O.
//!
//! Invariants: every text that reaches the markup goes through [`esc`];
//! fractions are clamped to 0..=1 and NaN/infinite inputs render as "no
//! data" rather than as broken geometry.

use std::fmt::Write as _;

/// HTML-escapes text for element content and quoted attributes.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `v` clamped to 0..=1; `None` for NaN, infinities and missing values.
pub fn clamp01(v: Option<f64>) -> Option<f64> {
    v.filter(|x| x.is_finite()).map(|x| x.clamp(0.0, 1.0))
}

/// Green/amber/red for a fraction where higher is better.
fn tone(f: f64) -> &'static str {
    if f >= 0.5 {
        "#1a7f37"
    } else if f >= 0.2 {
        "#9a6700"
    } else {
        "#cf222e"
    }
}

/// A ring gauge showing `value` (0..1), labelled `label`, with `text` in
/// the middle, coloured by the value. `None`/NaN draws an empty grey ring
/// and "no data".
pub fn gauge(value: Option<f64>, text: &str, label: &str) -> String {
    gauge_judged(value, text, label, None)
}

/// [`gauge`] coloured by `healthy` when given (e.g. SLI against its
/// target) instead of by the value.
pub fn gauge_judged(value: Option<f64>, text: &str, label: &str, healthy: Option<bool>) -> String {
    const R: f64 = 34.0;
    let circ = 2.0 * std::f64::consts::PI * R;
    let f = clamp01(value);
    let text = if f.is_some() { text } else { "no data" };
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg class=gauge viewBox='0 0 100 112' width=110 height=123 role=img aria-label='{}: {}'>\
         <circle cx=50 cy=50 r={R} fill=none stroke='#d0d7de' stroke-width=10 />",
        esc(label),
        esc(text)
    );
    if let Some(f) = f {
        let _ = write!(
            s,
            "<circle cx=50 cy=50 r={R} fill=none stroke='{}' stroke-width=10 \
             stroke-dasharray='{:.2} {:.2}' transform='rotate(-90 50 50)' />",
            match healthy {
                Some(true) => "#1a7f37",
                Some(false) => "#cf222e",
                None => tone(f),
            },
            f * circ,
            circ
        );
    }
    let _ = write!(
        s,
        "<text x=50 y=55 text-anchor=middle font-size=15 font-weight=600>{}</text>\
         <text x=50 y=107 text-anchor=middle font-size=11>{}</text></svg>",
        esc(text),
        esc(label)
    );
    s
}

/// The multiwindow burn thresholds drawn on every chart.
pub const THRESHOLDS: [f64; 4] = [14.4, 6.0, 3.0, 1.0];

/// A bar chart of burn rates per window (`(window, burn)`), on a square
/// root scale up to at least 20×, with the [`THRESHOLDS`] as dashed lines.
/// Missing or non-finite burns draw no bar and a "–" label.
pub fn burn_chart(bars: &[(String, Option<f64>)], label: &str) -> String {
    let (w, h, left, top, bottom) = (360.0_f64, 170.0_f64, 34.0, 10.0, 24.0);
    let plot_h = h - top - bottom;
    let finite = |b: &Option<f64>| b.filter(|x| x.is_finite()).map(|x| x.max(0.0));
    let max = bars
        .iter()
        .filter_map(|(_, b)| finite(b))
        .fold(20.0_f64, f64::max)
        .min(1e6);
    let y = |v: f64| top + plot_h * (1.0 - (v.min(max) / max).sqrt());
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg class=burn viewBox='0 0 {w} {h}' width='100%' role=img aria-label='{}'>\
         <rect x={left} y={top} width={} height={plot_h} fill='#f6f8fa' />",
        esc(label),
        w - left
    );
    for t in THRESHOLDS {
        let ty = y(t);
        let _ = write!(
            s,
            "<line x1={left} x2={w} y1='{ty:.1}' y2='{ty:.1}' stroke='#cf222e' stroke-dasharray='4 3' stroke-width=1 />\
             <text x=2 y='{:.1}' font-size=10 fill='#cf222e'>{t}×</text>",
            ty + 3.0
        );
    }
    let n = bars.len().max(1) as f64;
    let slot = (w - left) / n;
    for (i, (name, b)) in bars.iter().enumerate() {
        let x = left + slot * i as f64 + slot * 0.2;
        let bw = slot * 0.6;
        let value_text = match finite(b) {
            Some(v) => {
                let by = y(v);
                let color = if v >= 1.0 { "#cf222e" } else { "#1a7f37" };
                let _ = write!(
                    s,
                    "<rect x='{x:.1}' y='{by:.1}' width='{bw:.1}' height='{:.1}' fill='{color}' />",
                    (top + plot_h - by).max(0.0)
                );
                format!("{v:.2}")
            }
            None => "–".to_string(),
        };
        let cx = x + bw / 2.0;
        let _ = write!(
            s,
            "<text x='{cx:.1}' y='{:.1}' text-anchor=middle font-size=10>{}</text>\
             <text x='{cx:.1}' y='{:.1}' text-anchor=middle font-size=9 fill='#57606a'>{}</text>",
            h - bottom + 12.0,
            esc(name),
            h - 2.0,
            esc(&value_text)
        );
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_all_markup_characters() {
        assert_eq!(esc("<b a=\"x\">&'"), "&lt;b a=&quot;x&quot;&gt;&amp;&#39;");
        assert_eq!(esc("plain ünïcode"), "plain ünïcode");
    }

    #[test]
    fn clamp_bounds_and_nan() {
        assert_eq!(clamp01(Some(1.7)), Some(1.0));
        assert_eq!(clamp01(Some(-0.3)), Some(0.0));
        assert_eq!(clamp01(Some(0.25)), Some(0.25));
        assert_eq!(clamp01(Some(f64::NAN)), None);
        assert_eq!(clamp01(Some(f64::INFINITY)), None);
        assert_eq!(clamp01(None), None);
    }

    fn dash_len(svg: &str) -> Option<f64> {
        let i = svg.find("stroke-dasharray='")? + "stroke-dasharray='".len();
        svg[i..].split(' ').next()?.parse().ok()
    }

    #[test]
    fn gauge_arc_is_clamped() {
        let circ = 2.0 * std::f64::consts::PI * 34.0;
        let over = dash_len(&gauge(Some(3.0), "300%", "x")).unwrap();
        assert!((over - circ).abs() < 0.01, "{over}");
        let under = dash_len(&gauge(Some(-2.0), "-200%", "x")).unwrap();
        assert_eq!(under, 0.0);
        let half = dash_len(&gauge(Some(0.5), "50%", "x")).unwrap();
        assert!((half - circ / 2.0).abs() < 0.01, "{half}");
    }

    #[test]
    fn gauge_nan_shows_no_data_and_no_arc() {
        let g = gauge(Some(f64::NAN), "NaN%", "SLI");
        assert!(g.contains("no data"));
        assert!(dash_len(&g).is_none());
        assert!(!g.contains("NaN"));
    }

    #[test]
    fn judged_gauge_uses_the_verdict_colour() {
        assert!(gauge_judged(Some(0.99), "99%", "SLI", Some(false)).contains("#cf222e"));
        assert!(gauge_judged(Some(0.1), "10%", "SLI", Some(true)).contains("#1a7f37"));
    }

    #[test]
    fn gauge_escapes_labels() {
        let g = gauge(Some(0.9), "<x>", "a'b");
        assert!(g.contains("&lt;x&gt;") && g.contains("a&#39;b"));
        assert!(!g.contains("<x>"));
    }

    #[test]
    fn burn_chart_draws_thresholds_and_bars() {
        let bars = vec![
            ("5m".to_string(), Some(20.0)),
            ("1h".to_string(), Some(0.5)),
            ("1d".to_string(), None),
            ("<3d>".to_string(), Some(f64::NAN)),
        ];
        let c = burn_chart(&bars, "burn");
        for t in ["14.4×", "6×", "3×", "1×"] {
            assert!(c.contains(t), "missing threshold {t}");
        }
        assert_eq!(
            c.matches("<rect").count(),
            1 + 2,
            "background + two finite bars"
        );
        assert!(c.contains("&lt;3d&gt;"));
        assert_eq!(c.matches("<svg").count(), c.matches("</svg>").count());
        assert!(!c.contains("NaN"));
    }

    #[test]
    fn burn_chart_bars_stay_inside_for_huge_values() {
        let c = burn_chart(&[("5m".into(), Some(1e12))], "b");
        assert!(c.contains("y='10.0'"), "{c}");
    }
}
