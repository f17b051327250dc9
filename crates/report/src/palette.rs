//! The study's colours: one per model, in the same order in `fashion-gpu compare`'s chart and
//! the page's study charts.

/// One colour per model of a study, in its order, in both front-ends' charts: ten that stay
/// apart from each other (Tableau's), as RGB.
pub const SERIES_COLORS: [(u8, u8, u8); 10] = [
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
];
