// layer_norm_fwd.wgsl: LayerNorm over the last dimension of x (N, C), one invocation per row:
//
//   mean = Σ x / C,  var = Σ (x − mean)² / C (biased),  rstd = 1 / √(var + eps)
//   y = (x − mean) · rstd · weight + bias
//
// It writes y and keeps two numbers per row (mean, rstd) for the backward
// (`layer_norm_bwd.wgsl`), so no normalised copy of x is stored. A row is read three times; no
// barrier and no workgroup memory, so every driver compiles it at once.
//
// Bindings:
//   x (N·C,), weight (C,), bias (C,)   read only
//   y (N·C,), mean (N,), rstd (N,)
//   info [N, C, bits of eps (f32)]

@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> weight: array<f32>;
@group(0) @binding(2) var<storage, read_write> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<storage, read_write> mean: array<f32>;
@group(0) @binding(5) var<storage, read_write> rstd: array<f32>;
@group(0) @binding(6) var<storage, read_write> info: array<u32>;

@compute @workgroup_size({{ wg }}, 1, 1)
fn main(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    let n = info[0];
    let row = gid.y * groups.x * {{ wg }}u + gid.x;
    if row >= n {
        return;
    }
    let c = info[1];
    let eps = bitcast<f32>(info[2]);
    let base = row * c;
    var s = 0.0;
    for (var j = 0u; j < c; j++) {
        s += x[base + j];
    }
    let m = s / f32(c);
    var v = 0.0;
    for (var j = 0u; j < c; j++) {
        let d = x[base + j] - m;
        v += d * d;
    }
    let r = 1.0 / sqrt(v / f32(c) + eps);
    for (var j = 0u; j < c; j++) {
        y[base + j] = (x[base + j] - m) * r * weight[j] + bias[j];
    }
    mean[row] = m;
    rstd[row] = r;
}
