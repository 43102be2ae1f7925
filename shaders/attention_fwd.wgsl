// attention_fwd.wgsl — fused causal multi-head attention, forward (FlashAttention-2 style).
//
// One workgroup = one (batch·head, block of WG·R query rows); one invocation = R query rows
// (rows lid, lid + WG, ..., interleaved so the causal work stays balanced across invocations).
// K and V are streamed through workgroup memory in tiles of TILE keys; each row keeps its scaled
// query, its output accumulator, the running max `m` and the running sum `l` in registers
// (online softmax), so the (T × Tk) score matrix never exists in global memory. Each key loaded
// from a tile is used for R rows: on CPU adapters (lavapipe) every load is an 8-lane scalar
// loop, so R rows per load is what makes the kernel fast there.
//
// Placeholders (filled by src/kernels/attention/launch.rs through SourceTemplate, which first
// unrolls the loops bounded by HS4 up to head size 32, and those bounded by R where R = 1, so
// that the head-size index of the private arrays below is a constant):
//   {{ hs }}    head size (multiple of 4, 4..128)
//   {{ wg }}    invocations per workgroup
//   {{ rows }}  query rows per invocation (R)
//   {{ tile }}  keys per K/V tile in workgroup memory
// Sizes per adapter (`src/kernels/attention/plan.rs`): TILE = largest of 64/32/16/8 whose
// 2·TILE·HS·4 bytes fit `max_shared_memory_size`. GPUs: WG = TILE, R = 1 (one row per thread).
// CPU adapters (wgpu device_type Cpu, e.g. lavapipe): WG = 8 (one AVX2 vector), R = 512 / hs
// capped at 16 (16 rows at hs ≤ 32, 8 at hs 64, 4 at hs 128) — on lavapipe R = 8 instead of 1 is
// 4.6–5.2× faster end to end.
//
// Grouped-query attention: k and v hold nkv = nh / group heads (group = info[6], a runtime value,
// so no extra variant); query head h reads key/value head h / group in place. group = 1 is plain
// multi-head attention (the same addresses as before grouping existed).
//
// Masking matches `attention_reference`: query i (absolute position t_past + i) may see key j when
// j <= t_past + i and key j is not padding; masked scores are -1e9 (finite). A "dead" row (every
// key it may see is padding, i.e. t_past + i < first non-padding key) gets, like the reference,
// the uniform average of V over ALL Tk keys: its masked scores are set to 0 instead of -1e9 so the
// stored log-sum-exp is exactly log(Tk) and backward can recompute P = exp(s - L) = 1/Tk.
//
// Bindings: q (B, nh, T, hs), k, v (B, nkv, Tk, hs), pad (B, Tk) 1.0 at padding keys,
//           out (B, nh, T, hs), lse (B, nh, T),
//           info [B, nh, T, Tk, t_past, bits(1/sqrt(hs)), group].
// q, k, v, out are read as vec4 (hs is a multiple of 4): one load instruction per 4 floats.
//
// Inside every loop over the R rows, the private arrays are indexed through `ri = min(r, R - 1)`
// (the same value), not `r`: Mesa's NIR fully unrolls a loop whose induction variable indexes an
// array of the loop's length, which for R = 8-16 made each variant take 9-233 s to compile on
// Mesa 25's lavapipe (2-14 s so; `rlhf kernels --compile-times`).

@group(0) @binding(0) var<storage, read_write> q: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> k: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> v: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> pad: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> lse: array<f32>;
@group(0) @binding(6) var<storage, read_write> info: array<u32>;

const HS4: u32 = {{ hs }}u / 4u;
const WG: u32 = {{ wg }}u;
const R: u32 = {{ rows }}u;
const BR: u32 = {{ wg }}u * {{ rows }}u;
const BC: u32 = {{ tile }}u;
const MASK: f32 = -1.0e9;

var<workgroup> ks: array<vec4<f32>, {{ tile }}u * ({{ hs }}u / 4u)>;
var<workgroup> vs: array<vec4<f32>, {{ tile }}u * ({{ hs }}u / 4u)>;
var<workgroup> ps: array<f32, {{ tile }}u>;
var<workgroup> wg_first: u32;
var<workgroup> wg_end: u32;

@compute @workgroup_size({{ wg }}, 1, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let nh = info[1];
    let t = info[2];
    let tk = info[3];
    let t_past = info[4];
    let scale = bitcast<f32>(info[5]);
    let group = info[6];
    let bh = wid.y;
    let b = bh / nh;
    let bkv = b * (nh / group) + (bh % nh) / group; // (sequence, key/value head)
    let row0 = wid.x * BR;

    // first non-padding key of this sequence and the key range of this block, made
    // workgroup-uniform (the tile loop below holds barriers)
    if lid.x == 0u {
        var f = 0u;
        loop {
            if f >= tk || pad[b * tk + f] < 0.5 { break; }
            f += 1u;
        }
        let last_row = min(row0 + BR, t) - 1u;
        var e = min(t_past + last_row + 1u, tk);
        if t_past + row0 < f { e = tk; }
        wg_first = f;
        wg_end = e;
    }
    let first = workgroupUniformLoad(&wg_first);
    let end = workgroupUniformLoad(&wg_end);

    // per-row state of this invocation's R rows
    var qpos: array<u32, R>;
    var masked: array<f32, R>;
    var m: array<f32, R>;
    var l: array<f32, R>;
    var qr: array<vec4<f32>, R * HS4>;
    var acc: array<vec4<f32>, R * HS4>;
    for (var r = 0u; r < R; r++) {
        let ri = min(r, R - 1u);
        let row = row0 + lid.x + r * WG;
        qpos[ri] = t_past + row;
        masked[ri] = select(MASK, 0.0, t_past + row < first);
        m[ri] = -3.0e38;
        l[ri] = 0.0;
        let qbase = (bh * t + min(row, t - 1u)) * HS4;
        for (var d = 0u; d < HS4; d++) {
            qr[ri * HS4 + d] = q[qbase + d] * scale;
            acc[ri * HS4 + d] = vec4<f32>(0.0);
        }
    }
    let kvbase = bkv * tk * HS4;

    for (var j0 = 0u; j0 < end; j0 += BC) {
        workgroupBarrier();
        // cooperative tile load; indices past the last key are clamped (never read below)
        for (var e = lid.x; e < BC * HS4; e += WG) {
            let g = kvbase + min(j0 * HS4 + e, tk * HS4 - 1u);
            ks[e] = k[g];
            vs[e] = v[g];
        }
        for (var e = lid.x; e < BC; e += WG) {
            ps[e] = select(1.0, pad[b * tk + min(j0 + e, tk - 1u)], j0 + e < tk);
        }
        workgroupBarrier();
        let jn = min(BC, end - j0);
        for (var jj = 0u; jj < jn; jj++) {
            let j = j0 + jj;
            let open = ps[jj] < 0.5;
            var s: array<f32, R>;
            for (var r = 0u; r < R; r++) { let ri = min(r, R - 1u); s[ri] = 0.0; }
            // one load of k_j feeds all R rows
            for (var d = 0u; d < HS4; d++) {
                let kd = ks[jj * HS4 + d];
                for (var r = 0u; r < R; r++) { let ri = min(r, R - 1u); s[ri] += dot(qr[ri * HS4 + d], kd); }
            }
            var p: array<f32, R>;
            for (var r = 0u; r < R; r++) {
                let ri = min(r, R - 1u);
                let sr = select(masked[ri], s[ri], j <= qpos[ri] && open);
                if sr > m[ri] {
                    let alpha = exp(m[ri] - sr);
                    l[ri] *= alpha;
                    for (var d = 0u; d < HS4; d++) { acc[ri * HS4 + d] *= alpha; }
                    m[ri] = sr;
                }
                p[ri] = exp(sr - m[ri]);
                l[ri] += p[ri];
            }
            for (var d = 0u; d < HS4; d++) {
                let vd = vs[jj * HS4 + d];
                for (var r = 0u; r < R; r++) { let ri = min(r, R - 1u); acc[ri * HS4 + d] += p[ri] * vd; }
            }
        }
    }

    for (var r = 0u; r < R; r++) {
        let ri = min(r, R - 1u);
        let row = row0 + lid.x + r * WG;
        if row < t {
            let inv = 1.0 / l[ri];
            let obase = (bh * t + row) * HS4;
            for (var d = 0u; d < HS4; d++) { out[obase + d] = acc[ri * HS4 + d] * inv; }
            lse[bh * t + row] = m[ri] + log(l[ri]);
        }
    }
}
