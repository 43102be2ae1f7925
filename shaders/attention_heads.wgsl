// attention_heads.wgsl: between c_attn's fused output qkv (B, T, 3C) and the attention kernels'
// heads q, k, v (B, nh, T, hs) each, one invocation per element of qkv. Mode 0 splits qkv into
// the heads; mode 1 (the backward) writes dq, dk, dv back into one d qkv. It replaces a copy per
// head each way and, backward, a zeroed d qkv with a slice assignment per head.
//
// Element e of qkv is (b, t, which, h, d) with which ∈ {q, k, v}: e = ((b·T + t)·3 + which)·C
// + h·hs + d, C = nh·hs; in its head it is ((b·nh + h)·T + t)·hs + d.
//
// Bindings:
//   qkv (B·T·3C,)   mode 0: read; mode 1: written
//   q, k, v (B·nh·T·hs,) each   mode 0: written; mode 1: read
//   info [B·T·3C, T, C, hs, mode]

@group(0) @binding(0) var<storage, read_write> qkv: array<f32>;
@group(0) @binding(1) var<storage, read_write> q: array<f32>;
@group(0) @binding(2) var<storage, read_write> k: array<f32>;
@group(0) @binding(3) var<storage, read_write> v: array<f32>;
@group(0) @binding(4) var<storage, read_write> info: array<u32>;

@compute @workgroup_size({{ wg }}, 1, 1)
fn main(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    let e = gid.y * groups.x * {{ wg }}u + gid.x;
    if e >= info[0] {
        return;
    }
    let t_len = info[1];
    let c = info[2];
    let hs = info[3];
    let split = info[4] == 0u;
    let row = e / (3u * c); // b·T + t
    let r = e - row * 3u * c;
    let which = r / c;
    let cc = r - which * c;
    let h = cc / hs;
    let d = cc - h * hs;
    let b = row / t_len;
    let t = row - b * t_len;
    let nh = c / hs;
    let at = ((b * nh + h) * t_len + t) * hs + d;
    if split {
        let x = qkv[e];
        if which == 0u {
            q[at] = x;
        } else if which == 1u {
            k[at] = x;
        } else {
            v[at] = x;
        }
    } else {
        var x = 0.0;
        if which == 0u {
            x = q[at];
        } else if which == 1u {
            x = k[at];
        } else {
            x = v[at];
        }
        qkv[e] = x;
    }
}
