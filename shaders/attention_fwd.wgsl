// attention_fwd.wgsl — fused causal multi-head attention, forward (FlashAttention-2 style).
//
// One workgroup = one (batch·head, tile of BR query rows); one invocation = one query row.
// K and V are streamed through workgroup memory in tiles of BC keys; each row keeps its scaled
// query, its output accumulator, the running max `m` and the running sum `l` in registers
// (online softmax), so the (T × Tk) score matrix never exists in global memory.
//
// Placeholders (filled by src/kernels/attention_launch.rs through SourceTemplate):
//   {{ hs }}  head size (multiple of 4, 16..128): private arrays are sized by it
//   {{ br }}  query rows per workgroup = workgroup size
//   {{ bc }}  keys per K/V tile in workgroup memory
// Tile sizes come from the adapter: the largest of 64/32/16 whose 2·BC·HS·4 bytes fit
// `max_shared_memory_size` and whose BR fits `max_units_per_cube` (see `pick_tile`).
//
// Masking matches `attention_reference`: query i (absolute position t_past + i) may see key j when
// j <= t_past + i and key j is not padding; masked scores are -1e9 (finite). A "dead" row (every
// key it may see is padding, i.e. t_past + i < first non-padding key) gets, like the reference,
// the uniform average of V over ALL Tk keys: its masked scores are set to 0 instead of -1e9 so the
// stored log-sum-exp is exactly log(Tk) and backward can recompute P = exp(s - L) = 1/Tk.
//
// Bindings: q (B, nh, T, hs), k, v (B, nh, Tk, hs), pad (B, Tk) 1.0 at padding keys,
//           out (B, nh, T, hs), lse (B, nh, T), info [B, nh, T, Tk, t_past, bits(1/sqrt(hs))].

@group(0) @binding(0) var<storage, read_write> q: array<f32>;
@group(0) @binding(1) var<storage, read_write> k: array<f32>;
@group(0) @binding(2) var<storage, read_write> v: array<f32>;
@group(0) @binding(3) var<storage, read_write> pad: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<storage, read_write> lse: array<f32>;
@group(0) @binding(6) var<storage, read_write> info: array<u32>;

const HS: u32 = {{ hs }}u;
const HS4: u32 = {{ hs }}u / 4u;
const BR: u32 = {{ br }}u;
const BC: u32 = {{ bc }}u;
const MASK: f32 = -1.0e9;

var<workgroup> ks: array<vec4<f32>, {{ bc }}u * ({{ hs }}u / 4u)>;
var<workgroup> vs: array<vec4<f32>, {{ bc }}u * ({{ hs }}u / 4u)>;
var<workgroup> ps: array<f32, {{ bc }}u>;
var<workgroup> wg_first: u32;
var<workgroup> wg_end: u32;

fn ld4(buf_off: u32, which: u32) -> vec4<f32> {
    if which == 0u {
        return vec4<f32>(q[buf_off], q[buf_off + 1u], q[buf_off + 2u], q[buf_off + 3u]);
    } else if which == 1u {
        return vec4<f32>(k[buf_off], k[buf_off + 1u], k[buf_off + 2u], k[buf_off + 3u]);
    }
    return vec4<f32>(v[buf_off], v[buf_off + 1u], v[buf_off + 2u], v[buf_off + 3u]);
}

@compute @workgroup_size({{ br }}, 1, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let nh = info[1];
    let t = info[2];
    let tk = info[3];
    let t_past = info[4];
    let scale = bitcast<f32>(info[5]);
    let bh = wid.y; // b·nh + h
    let b = bh / nh;
    let row0 = wid.x * BR;
    let row = row0 + lid.x;
    let qpos = t_past + row;

    // first non-padding key of this sequence and the key range of this tile, made
    // workgroup-uniform (the tile loop below holds barriers)
    if lid.x == 0u {
        var f = 0u;
        loop {
            if f >= tk || pad[b * tk + f] < 0.5 { break; }
            f += 1u;
        }
        let last_row = min(row0 + BR, t) - 1u;
        var e = min(t_past + last_row + 1u, tk); // keys this tile may see
        if t_past + row0 < f { e = tk; }          // a dead row averages over every key
        wg_first = f;
        wg_end = e;
    }
    let first = workgroupUniformLoad(&wg_first);
    let end = workgroupUniformLoad(&wg_end);
    let dead = qpos < first;

    var qr: array<vec4<f32>, HS4>;
    var acc: array<vec4<f32>, HS4>;
    let qbase = (bh * t + min(row, t - 1u)) * HS;
    for (var d = 0u; d < HS4; d++) {
        qr[d] = ld4(qbase + 4u * d, 0u) * scale;
        acc[d] = vec4<f32>(0.0);
    }
    var m = -3.0e38;
    var l = 0.0;
    let kvbase = bh * tk * HS;
    let masked = select(MASK, 0.0, dead);

    for (var j0 = 0u; j0 < end; j0 += BC) {
        workgroupBarrier();
        for (var e = lid.x; e < BC * HS4; e += BR) {
            let jj = j0 + e / HS4;
            if jj < tk {
                let g = kvbase + jj * HS + 4u * (e % HS4);
                ks[e] = ld4(g, 1u);
                vs[e] = ld4(g, 2u);
            } else {
                ks[e] = vec4<f32>(0.0);
                vs[e] = vec4<f32>(0.0);
            }
        }
        for (var e = lid.x; e < BC; e += BR) {
            ps[e] = select(1.0, pad[b * tk + min(j0 + e, tk - 1u)], j0 + e < tk);
        }
        workgroupBarrier();
        let jn = min(BC, end - j0);
        for (var jj = 0u; jj < jn; jj++) {
            let j = j0 + jj;
            var s = masked;
            if j <= qpos && ps[jj] < 0.5 {
                s = 0.0;
                for (var d = 0u; d < HS4; d++) {
                    s += dot(qr[d], ks[jj * HS4 + d]);
                }
            }
            if s > m {
                let alpha = exp(m - s);
                l *= alpha;
                for (var d = 0u; d < HS4; d++) { acc[d] *= alpha; }
                m = s;
            }
            let p = exp(s - m);
            l += p;
            for (var d = 0u; d < HS4; d++) {
                acc[d] += p * vs[jj * HS4 + d];
            }
        }
    }

    if row < t {
        let inv = 1.0 / l;
        let obase = (bh * t + row) * HS;
        for (var d = 0u; d < HS4; d++) {
            let o = acc[d] * inv;
            out[obase + 4u * d] = o.x;
            out[obase + 4u * d + 1u] = o.y;
            out[obase + 4u * d + 2u] = o.z;
            out[obase + 4u * d + 3u] = o.w;
        }
        lse[bh * t + row] = m + log(l);
    }
}
