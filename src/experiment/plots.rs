//! Figures: accuracy against perturbation strength with one line per model (004 fig. 3.4,
//! 3.6), weight pictures (004 Sec. 3.4.5), and learning curves with bands (PNG and SVG). Text
//! uses the embedded DejaVu Sans, so no system font is needed.

use std::path::Path;
use std::sync::Once;

use plotters::prelude::*;
use plotters::style::FontStyle;

use crate::error::{LadderError, Result};

static FONT: Once = Once::new();

fn register_font() {
    FONT.call_once(|| {
        let bytes: &'static [u8] = include_bytes!("../../assets/DejaVuSans.ttf");
        // The font is embedded and known to parse; a failure only costs the labels.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, bytes);
    });
}

fn plot_error(path: &Path, e: impl std::fmt::Display) -> LadderError {
    LadderError::Format {
        path: path.into(),
        reason: format!("cannot draw the figure: {e}"),
    }
}

/// One named curve of a line chart.
pub struct Series<'a> {
    pub name: &'a str,
    pub points: Vec<(f64, f64)>,
}

/// The outcome of drawing with plotters.
pub(crate) type Drawn = std::result::Result<(), Box<dyn std::error::Error>>;

/// Writes the PNG that `draw` makes of the path it is given: drawn into a temporary name and
/// renamed, so a failure leaves no half-written figure. The embedded font is registered first.
pub(crate) fn draw_png(path: &Path, draw: impl FnOnce(&Path) -> Drawn) -> Result<()> {
    register_font();
    let tmp = path.with_extension("tmp.png");
    draw(&tmp).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        plot_error(path, e)
    })?;
    std::fs::rename(&tmp, path).map_err(|e| LadderError::io(path, e))
}

/// A line chart of `series` (x: `x_label`, y: accuracy in %), written as a PNG.
pub fn line_chart(path: &Path, title: &str, x_label: &str, series: &[Series]) -> Result<()> {
    draw_png(path, |tmp| draw_line_chart(tmp, title, x_label, series))
}

fn draw_line_chart(path: &Path, title: &str, x_label: &str, series: &[Series]) -> Drawn {
    let xs = series.iter().flat_map(|s| s.points.iter().map(|p| p.0));
    let (x0, x1) = xs.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
        (a.min(x), b.max(x))
    });
    let (x0, x1) = if x0 < x1 {
        (x0, x1)
    } else {
        (x0 - 0.5, x0 + 0.5)
    };
    let root = BitMapBackend::new(path, (800, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 24))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(64)
        .build_cartesian_2d(x0..x1, 0f64..100f64)?;
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc("accuracy (%)")
        .label_style(("sans-serif", 16))
        .draw()?;
    for (i, s) in series.iter().enumerate() {
        let color = curve_color(i).to_rgba();
        let style = ShapeStyle::from(color).stroke_width(2);
        chart
            .draw_series(LineSeries::new(s.points.iter().copied(), style))?
            .label(s.name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
        chart.draw_series(
            s.points
                .iter()
                .map(|&p| Circle::new(p, 4, ShapeStyle::from(color).filled())),
        )?;
    }
    legend(&mut chart, SeriesLabelPosition::LowerLeft, 16)?;
    root.present()?;
    Ok(())
}

/// What a tile grid says about itself: a title above it, a label left of each row of tiles
/// and above each column (empty ones are left out).
#[derive(Debug, Clone, Default)]
pub struct TileLabels {
    pub title: String,
    pub rows: Vec<String>,
    pub columns: Vec<String>,
}

/// Draws `tiles` (each `h × w` values, row-major) as a grid of grey images, each scaled to its
/// own range (black = lowest, white = highest), `scale` screen pixels per value, under the
/// title and beside the row and column labels of `labels`.
pub fn tile_grid(
    path: &Path,
    tiles: &[Vec<f32>],
    (h, w): (usize, usize),
    columns: usize,
    scale: usize,
    labels: &TileLabels,
) -> Result<()> {
    if tiles.is_empty() || columns == 0 {
        return Err(plot_error(path, "nothing to draw"));
    }
    let rows = tiles.len().div_ceil(columns);
    let gap = 2;
    let cell_w = w * scale + gap;
    let cell_h = h * scale + gap;
    let font = 14;
    let title_h = if labels.title.is_empty() {
        0
    } else {
        2 * font + 4
    };
    let column_h = if labels.columns.is_empty() {
        0
    } else {
        font + 6
    };
    let widest = labels
        .rows
        .iter()
        .map(|l| l.chars().count())
        .max()
        .unwrap_or(0);
    let left = if widest == 0 {
        0
    } else {
        widest * font * 3 / 5 + 10
    };
    let top = title_h + column_h;
    let grid_w = columns * cell_w + gap;
    let size = (
        (left + grid_w).max(labels.title.chars().count() * font * 3 / 5 + 20) as u32,
        (top + rows * cell_h + gap) as u32,
    );
    draw_png(path, |tmp| {
        let root = BitMapBackend::new(tmp, size).into_drawing_area();
        root.fill(&WHITE)?;
        let style = ("sans-serif", font as u32).into_font().color(&BLACK);
        if title_h > 0 {
            let title = ("sans-serif", (font + 4) as u32).into_font().color(&BLACK);
            root.draw(&Text::new(labels.title.as_str(), (8, 6), title))?;
        }
        for (c, label) in labels.columns.iter().enumerate().take(columns) {
            let x = left + gap + c * cell_w + cell_w / 2 - label.chars().count() * font * 3 / 10;
            root.draw(&Text::new(
                label.as_str(),
                (x as i32, (title_h + 2) as i32),
                style.clone(),
            ))?;
        }
        for (r, label) in labels.rows.iter().enumerate().take(rows) {
            let y = top + gap + r * cell_h + cell_h / 2 - font / 2;
            root.draw(&Text::new(label.as_str(), (4, y as i32), style.clone()))?;
        }
        let bg = Rectangle::new(
            [
                (left as i32, top as i32),
                ((left + grid_w) as i32, (top + rows * cell_h + gap) as i32),
            ],
            RGBColor(128, 128, 160).filled(),
        );
        root.draw(&bg)?;
        for (t, tile) in tiles.iter().enumerate() {
            let (lo, hi) = tile
                .iter()
                .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &v| {
                    (a.min(v), b.max(v))
                });
            let span = if hi > lo { hi - lo } else { 1.0 };
            let (ox, oy) = (
                left + gap + (t % columns) * cell_w,
                top + gap + (t / columns) * cell_h,
            );
            for (i, &v) in tile.iter().enumerate() {
                let g = (255.0 * (v - lo) / span).round() as u8;
                let (x, y) = (ox + (i % w) * scale, oy + (i / w) * scale);
                root.fill_rect_px((x, y), scale, RGBColor(g, g, g))?;
            }
        }
        root.present()?;
        Ok(())
    })
}

trait FillPx {
    fn fill_rect_px(
        &self,
        at: (usize, usize),
        scale: usize,
        color: RGBColor,
    ) -> std::result::Result<(), Box<dyn std::error::Error>>;
}

impl FillPx for DrawingArea<BitMapBackend<'_>, plotters::coord::Shift> {
    fn fill_rect_px(
        &self,
        (x, y): (usize, usize),
        scale: usize,
        color: RGBColor,
    ) -> std::result::Result<(), Box<dyn std::error::Error>> {
        let (x, y, s) = (x as i32, y as i32, scale as i32);
        self.draw(&Rectangle::new([(x, y), (x + s, y + s)], color.filled()))?;
        Ok(())
    }
}

/// One named learning curve: the mean per epoch and, for several seeds, the band of one
/// standard deviation around it.
pub struct Curve {
    pub name: String,
    pub mean: Vec<(f64, f64)>,
    /// (epoch, low, high) where there is a spread.
    pub band: Vec<(f64, f64, f64)>,
    /// The curve's colour (by quantity) and line pattern (by run: solid, dashed, dotted, ...).
    pub color: usize,
    pub pattern: usize,
}

/// A chart of learning curves against the epoch, as PNG and SVG at `stem`.png and `stem`.svg;
/// `log_y` puts the values on a logarithmic axis (costs span orders of magnitude).
pub fn curve_chart(
    stem: &Path,
    title: &str,
    y_label: &str,
    curves: &[Curve],
    log_y: bool,
) -> Result<()> {
    let png = stem.with_extension("png");
    draw_png(&png, |tmp| {
        let root = BitMapBackend::new(tmp, (900, 600)).into_drawing_area();
        draw_curves(root, title, y_label, curves, log_y)
    })?;
    let svg = stem.with_extension("svg");
    let tmp = svg.with_extension("tmp.svg");
    register_font();
    let drawn = {
        let root = SVGBackend::new(&tmp, (900, 600)).into_drawing_area();
        draw_curves(root, title, y_label, curves, log_y)
    };
    drawn.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        plot_error(&svg, e)
    })?;
    std::fs::rename(&tmp, &svg).map_err(|e| LadderError::io(&svg, e))
}

fn draw_curves<DB: DrawingBackend>(
    root: DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    y_label: &str,
    curves: &[Curve],
    log_y: bool,
) -> Drawn
where
    DB::ErrorType: 'static,
{
    let points = curves.iter().flat_map(|c| {
        c.mean
            .iter()
            .copied()
            .chain(c.band.iter().flat_map(|&(x, lo, hi)| [(x, lo), (x, hi)]))
    });
    let (mut x0, mut x1, mut y0, mut y1) = (
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
    );
    for (x, y) in points.filter(|p| p.1.is_finite() && (!log_y || p.1 > 0.0)) {
        (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
    }
    if !(x0.is_finite() && y0.is_finite()) {
        return Err("no finite values to draw".into());
    }
    if x1 <= x0 {
        x1 = x0 + 1.0;
    }
    if y1 <= y0 {
        y1 = y0 * 1.1 + 1.0;
    }
    root.fill(&WHITE)?;
    let mut builder = ChartBuilder::on(&root);
    builder
        .caption(title, ("sans-serif", 24))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(72);
    if log_y {
        let mut chart = builder.build_cartesian_2d(x0..x1, (y0 * 0.9..y1 * 1.1).log_scale())?;
        mesh_curves_legend(&mut chart, y_label, curves)?;
    } else {
        let pad = (y1 - y0) * 0.05;
        let mut chart = builder.build_cartesian_2d(x0..x1, (y0 - pad).max(0.0)..y1 + pad)?;
        mesh_curves_legend(&mut chart, y_label, curves)?;
    }
    root.present()?;
    Ok(())
}

/// Colours that read on white (the Tableau 10 palette; Palette99 has pale yellows).
fn curve_color(i: usize) -> RGBColor {
    const COLORS: [RGBColor; 10] = [
        RGBColor(31, 119, 180),
        RGBColor(214, 39, 40),
        RGBColor(44, 160, 44),
        RGBColor(148, 103, 189),
        RGBColor(255, 127, 14),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
        RGBColor(23, 190, 207),
        RGBColor(127, 127, 127),
        RGBColor(188, 189, 34),
    ];
    COLORS[i % COLORS.len()]
}

fn draw_series_of<'a, DB, X, Y>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    curves: &[Curve],
) -> Drawn
where
    DB: DrawingBackend + 'a,
    DB::ErrorType: 'static,
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    for c in curves {
        let color = curve_color(c.color);
        if !c.band.is_empty() {
            let mut outline: Vec<(f64, f64)> = c.band.iter().map(|&(x, _, hi)| (x, hi)).collect();
            outline.extend(c.band.iter().rev().map(|&(x, lo, _)| (x, lo)));
            chart.draw_series(std::iter::once(Polygon::new(
                outline,
                color.mix(0.2).filled(),
            )))?;
        }
        let style = ShapeStyle::from(color).stroke_width(2);
        let points = c.mean.iter().copied();
        let drawn = match c.pattern {
            0 => chart.draw_series(LineSeries::new(points, style))?,
            k => {
                let (dash, gap) = [(10, 5), (3, 4), (14, 4), (6, 8)][(k - 1) % 4];
                chart.draw_series(DashedLineSeries::new(points, dash, gap, style))?
            }
        };
        let pattern = c.pattern;
        drawn.label(c.name.as_str()).legend(move |(x, y)| {
            // The legend shows the pattern: a gap in the sample line for dashed runs.
            let end = if pattern == 0 { x + 20 } else { x + 8 };
            PathElement::new(vec![(x, y), (end, y)], style)
        });
    }
    Ok(())
}

/// The grid and axis labels, the curves and the legend of a learning-curve chart.
fn mesh_curves_legend<'a, DB, X, Y>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    y_label: &str,
    curves: &[Curve],
) -> Drawn
where
    DB: DrawingBackend + 'a,
    DB::ErrorType: 'static,
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
    X: plotters::coord::ranged1d::ValueFormatter<f64>,
    Y: plotters::coord::ranged1d::ValueFormatter<f64>,
{
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc(y_label)
        .label_style(("sans-serif", 16))
        .draw()?;
    draw_series_of(chart, curves)?;
    legend(chart, SeriesLabelPosition::UpperRight, 14)
}

/// The legend of a chart's labelled series at `position`: framed, on a white background that
/// lets the curves show through a little.
pub(crate) fn legend<'a, DB, X, Y>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    position: SeriesLabelPosition,
    font_size: u32,
) -> Drawn
where
    DB: DrawingBackend + 'a,
    DB::ErrorType: 'static,
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", font_size))
        .draw()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png_size(path: &Path) -> (u32, u32) {
        let b = std::fs::read(path).unwrap();
        assert_eq!(&b[1..4], b"PNG", "{}", path.display());
        let be = |i: usize| u32::from_be_bytes(b[i..i + 4].try_into().unwrap());
        (be(16), be(20))
    }

    #[test]
    fn charts_and_grids_are_pngs() {
        let dir = tempfile::tempdir().unwrap();
        let chart = dir.path().join("c.png");
        let series = [
            Series {
                name: "A",
                points: vec![(0.0, 98.0), (0.1, 40.0), (0.2, 10.0)],
            },
            Series {
                name: "B",
                points: vec![(0.0, 98.5), (0.1, 80.0), (0.2, 60.0)],
            },
        ];
        line_chart(&chart, "FGSM", "ε", &series).unwrap();
        assert_eq!(png_size(&chart), (800, 560));
        let grid = dir.path().join("g.png");
        let tiles = vec![vec![0.0, 1.0, 2.0, 3.0]; 5];
        tile_grid(&grid, &tiles, (2, 2), 3, 4, &TileLabels::default()).unwrap();
        // 3 columns × (2·4 + 2) + 2 wide, 2 rows × 10 + 2 high.
        assert_eq!(png_size(&grid), (32, 22));
        assert!(
            std::fs::read_dir(dir.path()).unwrap().count() == 2,
            "no temporary left"
        );
        assert!(tile_grid(&grid, &[], (2, 2), 3, 4, &TileLabels::default()).is_err());
        // A title, column and row labels add a band above and a margin on the left.
        let labels = TileLabels {
            title: "T".into(),
            rows: vec!["original".into(), "decoded".into()],
            columns: vec!["0".into(), "1".into(), "2".into()],
        };
        let labelled = dir.path().join("l.png");
        tile_grid(&labelled, &tiles, (2, 2), 3, 4, &labels).unwrap();
        let ((w0, h0), (w1, h1)) = (png_size(&grid), png_size(&labelled));
        assert!(w1 > w0 && h1 > h0 + 20, "{w0}×{h0} → {w1}×{h1}");
    }
}
