// layer_norm_bwd.wgsl: the gradients of LayerNorm (`layer_norm_fwd.wgsl`) in one dispatch. The
// first N invocations take a row each, the next C a column each:
//
//   row n:     x̂ = (x − mean)·rstd, dx̂ = dy·weight,
//              dx = (dx̂ − Σ dx̂ / C − x̂ · Σ dx̂·x̂ / C) · rstd
//   column j:  dweight_j = Σ_n dy[n, j] · x̂[n, j],   dbias_j = Σ_n dy[n, j]
//
// Each sum runs in a fixed order, so the result is the same on every run. A column's
// invocations read a row's neighbouring elements together. No barrier, no workgroup memory.
//
// Bindings:
//   x (N·C,), weight (C,), mean (N,), rstd (N,), dy (N·C,)   read only
//   dx (N·C,), dweight (C,), dbias (C,)
//   info [N, C]

@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> weight: array<f32>;
@group(0) @binding(2) var<storage, read_write> mean: array<f32>;
@group(0) @binding(3) var<storage, read_write> rstd: array<f32>;
@group(0) @binding(4) var<storage, read_write> dy: array<f32>;
@group(0) @binding(5) var<storage, read_write> dx: array<f32>;
@group(0) @binding(6) var<storage, read_write> dweight: array<f32>;
@group(0) @binding(7) var<storage, read_write> dbias: array<f32>;
@group(0) @binding(8) var<storage, read_write> info: array<u32>;

@compute @workgroup_size({{ wg }}, 1, 1)
fn main(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    let n = info[0];
    let c = info[1];
    let id = gid.y * groups.x * {{ wg }}u + gid.x;
    if id < n {
        let base = id * c;
        let m = mean[id];
        let r = rstd[id];
        var a = 0.0;
        var b = 0.0;
        for (var j = 0u; j < c; j++) {
            let g = dy[base + j] * weight[j];
            a += g;
            b += g * (x[base + j] - m) * r;
        }
        a = a / f32(c);
        b = b / f32(c);
        for (var j = 0u; j < c; j++) {
            let g = dy[base + j] * weight[j];
            dx[base + j] = (g - a - (x[base + j] - m) * r * b) * r;
        }
    } else if id < n + c {
        let j = id - n;
        var dw = 0.0;
        var db = 0.0;
        for (var i = 0u; i < n; i++) {
            let g = dy[i * c + j];
            dw += g * (x[i * c + j] - mean[i]) * rstd[i];
            db += g;
        }
        dweight[j] = dw;
        dbias[j] = db;
    }
}
