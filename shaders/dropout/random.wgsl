// random: the counter-based hash behind dropout's masks, prepended to the kernels that use it
// (dropout/forward.wgsl, dropout/backward.wgsl). Twin: reference::mix and reference::dropout_keeps.
// No bindings.

// Wellons's lowbias32.
fn mix(v: u32) -> u32 {
    var h = v;
    h = h ^ (h >> 16u);
    h = h * 0x7feb352du;
    h = h ^ (h >> 15u);
    h = h * 0x846ca68bu;
    h = h ^ (h >> 16u);
    return h;
}

// A uniform draw in [0, 1) with 24 bits, for element `element` of dropout op `index` in the
// step seeded `seed`: dropout keeps the element when the draw is ≥ its rate.
fn dropout_draw(seed: u32, index: u32, element: u32) -> f32 {
    let stream = mix(seed ^ (index * 0x9e3779b9u));
    return f32(mix(stream ^ element) >> 8u) * (1.0 / 16777216.0);
}

