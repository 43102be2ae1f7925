// attention_bwd_dkv.wgsl — fused causal attention backward, dK and dV (FlashAttention-2).
//
// One workgroup = one (batch·key/value head, block of WG·R keys); one invocation = R keys (lid,
// lid + WG, ...), each holding k_j, v_j and its dK, dV accumulators in registers. Query rows
// stream through workgroup memory in tiles of TILE rows (Q, dO, L, D). Scores are recomputed tile
// by tile from Q, K and the forward's log-sum-exp L: P = exp(q·k/√hs − L), dP = dO·v,
// dS = P ∘ (dP − D) with D = rowsum(dO ∘ O); dV = Σ_i P_ij dO_i, dK = Σ_i dS_ij q_i / √hs. No
// atomics: dQ is a separate kernel (attention_bwd_dq.wgsl).
//
// Grouped-query attention (k, v with nkv = nh / group heads, group = info[6]): the workgroup of
// key/value head kh takes the query heads kh·group .. kh·group + group − 1 in turn, streaming each
// one's rows through the tiles into the same accumulators, so dK and dV are summed over the group
// in a fixed order with no atomics and no per-query-head copy. group = 1: one query head, plain
// multi-head attention (the same work and order as before grouping existed).
//
// Placeholders: {{ hs }} head size, {{ wg }} invocations per workgroup, {{ rows }} keys per
// invocation (R), {{ tile }} query rows per tile; loops unrolled by the launcher as
// in attention_fwd.wgsl. Sizes per adapter as there (`src/kernels/attention/plan.rs`).
// Masking as in attention_fwd.wgsl; a "dead" query row (all visible keys padding) has uniform
// P = 1/Tk over every key, which only feeds dV (its dS is masked to zero, as in the reference).
//
// Bindings: q, d_o (B, nh, T, hs), k, v (B, nkv, Tk, hs), pad (B, Tk), lse, dd (B, nh, T),
//           dk, dv (B, nkv, Tk, hs), info [B, nh, T, Tk, t_past, bits(1/sqrt(hs)), group].
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
@group(0) @binding(7) var<storage, read_write> dk: array<vec4<f32>>;
@group(0) @binding(8) var<storage, read_write> dv: array<vec4<f32>>;
@group(0) @binding(9) var<storage, read_write> info: array<u32>;

const HS4: u32 = {{ hs }}u / 4u;
const WG: u32 = {{ wg }}u;
const R: u32 = {{ rows }}u;
const BK: u32 = {{ wg }}u * {{ rows }}u;
const BQ: u32 = {{ tile }}u;

var<workgroup> qs: array<vec4<f32>, {{ tile }}u * ({{ hs }}u / 4u)>;
var<workgroup> dos: array<vec4<f32>, {{ tile }}u * ({{ hs }}u / 4u)>;
var<workgroup> ls: array<f32, {{ tile }}u>;
var<workgroup> ds: array<f32, {{ tile }}u>;
var<workgroup> wg_first: u32;
var<workgroup> wg_ndead: u32;
var<workgroup> wg_qstart: u32;
var<workgroup> wg_t: u32;
var<workgroup> wg_group: u32;

@compute @workgroup_size({{ wg }}, 1, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let nh = info[1];
    let tk = info[3];
    let t_past = info[4];
    let scale = bitcast<f32>(info[5]);
    let bkv = wid.y; // (sequence, key/value head)
    let nkv = nh / info[6];
    let b = bkv / nkv;
    let key0 = wid.x * BK;

    // first non-padding key, dead rows [0, n_dead), first row that sees this block of keys
    if lid.x == 0u {
        let tt = info[2];
        var f = 0u;
        loop {
            if f >= tk || pad[b * tk + f] < 0.5 { break; }
            f += 1u;
        }
        wg_first = f;
        wg_ndead = select(0u, min(f - t_past, tt), f > t_past);
        wg_qstart = select(0u, key0 - t_past, key0 > t_past);
        wg_t = tt;
        wg_group = info[6];
    }
    let first = workgroupUniformLoad(&wg_first);
    let n_dead = workgroupUniformLoad(&wg_ndead);
    let q_start = workgroupUniformLoad(&wg_qstart);
    let t = workgroupUniformLoad(&wg_t);
    let group = workgroupUniformLoad(&wg_group);
    let h0 = (bkv % nkv) * group; // the group's first query head

    var jr: array<u32, R>;
    var key_in: array<bool, R>;
    var key_ok: array<bool, R>;
    var kr: array<vec4<f32>, R * HS4>;
    var vr: array<vec4<f32>, R * HS4>;
    var dkr: array<vec4<f32>, R * HS4>;
    var dvr: array<vec4<f32>, R * HS4>;
    for (var r = 0u; r < R; r++) {
        let ri = min(r, R - 1u);
        let j = key0 + lid.x + r * WG;
        let jc = min(j, tk - 1u);
        jr[ri] = j;
        key_in[ri] = j < tk;
        key_ok[ri] = j < tk && pad[b * tk + jc] < 0.5;
        let kbase = (bkv * tk + jc) * HS4;
        for (var d = 0u; d < HS4; d++) {
            kr[ri * HS4 + d] = k[kbase + d] * scale;
            vr[ri * HS4 + d] = v[kbase + d];
            dkr[ri * HS4 + d] = vec4<f32>(0.0);
            dvr[ri * HS4 + d] = vec4<f32>(0.0);
        }
    }

    for (var gh = 0u; gh < group; gh++) {
        let bh = b * nh + h0 + gh; // query head h0 + gh of sequence b
        for (var qt0 = 0u; qt0 < t; qt0 += BQ) {
            if qt0 + BQ <= q_start && qt0 >= n_dead { continue; } // no row of this tile touches the block
            workgroupBarrier();
            // cooperative tile load; indices past the last row are clamped (never read below)
            for (var e = lid.x; e < BQ * HS4; e += WG) {
                let g = min((bh * t + qt0) * HS4 + e, (bh * t + t) * HS4 - 1u);
                qs[e] = q[g];
                dos[e] = d_o[g];
            }
            for (var e = lid.x; e < BQ; e += WG) {
                let ii = min(qt0 + e, t - 1u);
                ls[e] = lse[bh * t + ii];
                ds[e] = dd[bh * t + ii];
            }
            workgroupBarrier();
            let rn = min(BQ, t - qt0);
            for (var ii = 0u; ii < rn; ii++) {
                let qpos = t_past + qt0 + ii;
                let dead = qpos < first;
                var s: array<f32, R>;
                var dp: array<f32, R>;
                for (var r = 0u; r < R; r++) { let ri = min(r, R - 1u); s[ri] = 0.0; dp[ri] = 0.0; }
                for (var d = 0u; d < HS4; d++) {
                    let qd = qs[ii * HS4 + d];
                    let od = dos[ii * HS4 + d];
                    for (var r = 0u; r < R; r++) {
                        let ri = min(r, R - 1u);
                        s[ri] += dot(qd, kr[ri * HS4 + d]);
                        dp[ri] += dot(od, vr[ri * HS4 + d]);
                    }
                }
                let li = ls[ii];
                let di = ds[ii];
                var p: array<f32, R>;
                var dsv: array<f32, R>;
                for (var r = 0u; r < R; r++) {
                    let ri = min(r, R - 1u);
                    let live = key_ok[ri] && jr[ri] <= qpos;
                    // dead row: uniform P = 1/Tk over every key, feeds dV only
                    p[ri] = select(select(0.0, exp(-li), key_in[ri] && dead), exp(s[ri] - li), live);
                    dsv[ri] = select(0.0, p[ri] * (dp[ri] - di), live);
                }
                for (var d = 0u; d < HS4; d++) {
                    let qd = qs[ii * HS4 + d];
                    let od = dos[ii * HS4 + d];
                    for (var r = 0u; r < R; r++) {
                        let ri = min(r, R - 1u);
                        dvr[ri * HS4 + d] += p[ri] * od;
                        dkr[ri * HS4 + d] += dsv[ri] * qd;
                    }
                }
            }
        }
    }

    for (var r = 0u; r < R; r++) {
        let ri = min(r, R - 1u);
        if key_in[ri] {
            let o = (bkv * tk + jr[ri]) * HS4;
            for (var d = 0u; d < HS4; d++) {
                dk[o + d] = dkr[ri * HS4 + d] * scale;
                dv[o + d] = dvr[ri * HS4 + d];
            }
        }
    }
}
