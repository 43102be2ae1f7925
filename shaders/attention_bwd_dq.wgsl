// attention_bwd_dq.wgsl — fused causal attention backward, dQ (FlashAttention-2).
//
// One workgroup = one (batch·head, block of WG·R query rows); one invocation = R rows (lid,
// lid + WG, ...), each holding q_i, dO_i, L_i, D_i and its dQ accumulator in registers. K and V
// stream through workgroup memory in tiles of TILE keys, scores are recomputed:
// P = exp(q·k/√hs − L), dS = P ∘ (dO·v − D), dQ_i = Σ_j dS_ij k_j / √hs. Dead rows (all visible
// keys padding) get dQ = 0, as in the reference.
//
// Grouped-query attention as in attention_fwd.wgsl: query head h reads key/value head h / group
// (group = info[6]).
//
// Placeholders: {{ hs }} head size, {{ wg }} invocations per workgroup, {{ rows }} rows per
// invocation (R), {{ tile }} keys per K/V tile; loops unrolled by the launcher as
// in attention_fwd.wgsl. Sizes per adapter as there (`src/kernels/attention/plan.rs`).
//
// Bindings: q, d_o (B, nh, T, hs), k, v (B, nkv, Tk, hs), pad (B, Tk), lse, dd (B, nh, T),
//           dq (B, nh, T, hs), info [B, nh, T, Tk, t_past, bits(1/sqrt(hs)), group].
//
// Inside every loop over the R rows, the private arrays are indexed through `ri = min(r, R - 1)`
// (the same value), not `r`: Mesa's NIR fully unrolls a loop whose induction variable indexes an
// array of the loop's length, which for R = 8-16 made each variant take 9-233 s to compile on
// Mesa 25's lavapipe (2-14 s so; `rlhf kernels --compile-times`).

@group(0) @binding(0) var<storage, read_write> q: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> k: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> v: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> pad: array<f32>;
@group(0) @binding(4) var<storage, read_write> d_o: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> lse: array<f32>;
@group(0) @binding(6) var<storage, read_write> dd: array<f32>;
@group(0) @binding(7) var<storage, read_write> dq: array<vec4<f32>>;
@group(0) @binding(8) var<storage, read_write> info: array<u32>;

const HS4: u32 = {{ hs }}u / 4u;
const WG: u32 = {{ wg }}u;
const R: u32 = {{ rows }}u;
const BR: u32 = {{ wg }}u * {{ rows }}u;
const BC: u32 = {{ tile }}u;

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

    // first non-padding key and the keys [0, end) this block sees, workgroup-uniform
    if lid.x == 0u {
        var f = 0u;
        loop {
            if f >= tk || pad[b * tk + f] < 0.5 { break; }
            f += 1u;
        }
        wg_first = f;
        wg_end = min(t_past + min(row0 + BR, t), tk);
    }
    let first = workgroupUniformLoad(&wg_first);
    let end = workgroupUniformLoad(&wg_end);

    var qpos: array<u32, R>;
    var live: array<bool, R>;
    var li: array<f32, R>;
    var di: array<f32, R>;
    var qr: array<vec4<f32>, R * HS4>;
    var dor: array<vec4<f32>, R * HS4>;
    var dqr: array<vec4<f32>, R * HS4>;
    for (var r = 0u; r < R; r++) {
        let ri = min(r, R - 1u);
        let row = row0 + lid.x + r * WG;
        let rc = min(row, t - 1u);
        qpos[ri] = t_past + row;
        live[ri] = row < t && t_past + row >= first;
        li[ri] = lse[bh * t + rc];
        di[ri] = dd[bh * t + rc];
        let base = (bh * t + rc) * HS4;
        for (var d = 0u; d < HS4; d++) {
            qr[ri * HS4 + d] = q[base + d] * scale;
            dor[ri * HS4 + d] = d_o[base + d];
            dqr[ri * HS4 + d] = vec4<f32>(0.0);
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
            var dp: array<f32, R>;
            for (var r = 0u; r < R; r++) { let ri = min(r, R - 1u); s[ri] = 0.0; dp[ri] = 0.0; }
            for (var d = 0u; d < HS4; d++) {
                let kd = ks[jj * HS4 + d];
                let vd = vs[jj * HS4 + d];
                for (var r = 0u; r < R; r++) {
                    let ri = min(r, R - 1u);
                    s[ri] += dot(qr[ri * HS4 + d], kd);
                    dp[ri] += dot(dor[ri * HS4 + d], vd);
                }
            }
            var dsv: array<f32, R>;
            for (var r = 0u; r < R; r++) {
                let ri = min(r, R - 1u);
                dsv[ri] = select(0.0, exp(s[ri] - li[ri]) * (dp[ri] - di[ri]), live[ri] && j <= qpos[ri] && open);
            }
            for (var d = 0u; d < HS4; d++) {
                let kd = ks[jj * HS4 + d];
                for (var r = 0u; r < R; r++) { let ri = min(r, R - 1u); dqr[ri * HS4 + d] += dsv[ri] * kd; }
            }
        }
    }

    for (var r = 0u; r < R; r++) {
        let ri = min(r, R - 1u);
        let row = row0 + lid.x + r * WG;
        if row < t {
            let base = (bh * t + row) * HS4;
            for (var d = 0u; d < HS4; d++) { dq[base + d] = dqr[ri * HS4 + d] * scale; }
        }
    }
}
