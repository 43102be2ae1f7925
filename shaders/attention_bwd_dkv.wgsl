// attention_bwd_dkv.wgsl — fused causal attention backward, dK and dV (FlashAttention-2).
//
// One workgroup = one (batch·head, block of BK keys); one invocation = one key j, holding k_j, v_j
// and its dK, dV accumulators in registers. Query rows stream through workgroup memory in tiles
// of BQ rows (Q, dO, L, D). Scores are recomputed tile by tile from Q, K and the forward's
// log-sum-exp L: P = exp(q·k/√hs − L), dP = dO·v, dS = P ∘ (dP − D) with D = rowsum(dO ∘ O);
// dV = Σ_i P_ij dO_i, dK = Σ_i dS_ij q_i / √hs. No atomics: dQ is a separate kernel (dq.wgsl).
//
// Placeholders: {{ hs }} head size, {{ bk }} keys per workgroup (= workgroup size),
// {{ bq }} query rows per tile; chosen per adapter like the forward (see `pick_tile`).
// Masking as in attention_fwd.wgsl; a "dead" query row (all visible keys padding) has uniform
// P = 1/Tk over every key, which only feeds dV (its dS is masked to zero, as in the reference).
//
// Bindings: q, d_o (B, nh, T, hs), k, v (B, nh, Tk, hs), pad (B, Tk), lse, dd (B, nh, T),
//           dk, dv (B, nh, Tk, hs), info [B, nh, T, Tk, t_past, bits(1/sqrt(hs))].

@group(0) @binding(0) var<storage, read_write> q: array<f32>;
@group(0) @binding(1) var<storage, read_write> k: array<f32>;
@group(0) @binding(2) var<storage, read_write> v: array<f32>;
@group(0) @binding(3) var<storage, read_write> pad: array<f32>;
@group(0) @binding(4) var<storage, read_write> d_o: array<f32>;
@group(0) @binding(5) var<storage, read_write> lse: array<f32>;
@group(0) @binding(6) var<storage, read_write> dd: array<f32>;
@group(0) @binding(7) var<storage, read_write> dk: array<f32>;
@group(0) @binding(8) var<storage, read_write> dv: array<f32>;
@group(0) @binding(9) var<storage, read_write> info: array<u32>;

const HS: u32 = {{ hs }}u;
const HS4: u32 = {{ hs }}u / 4u;
const BK: u32 = {{ bk }}u;
const BQ: u32 = {{ bq }}u;

var<workgroup> qs: array<vec4<f32>, {{ bq }}u * ({{ hs }}u / 4u)>;
var<workgroup> dos: array<vec4<f32>, {{ bq }}u * ({{ hs }}u / 4u)>;
var<workgroup> ls: array<f32, {{ bq }}u>;
var<workgroup> ds: array<f32, {{ bq }}u>;
var<workgroup> wg_first: u32;
var<workgroup> wg_ndead: u32;
var<workgroup> wg_qstart: u32;
var<workgroup> wg_t: u32;

fn ld_q(o: u32) -> vec4<f32> { return vec4<f32>(q[o], q[o + 1u], q[o + 2u], q[o + 3u]); }
fn ld_do(o: u32) -> vec4<f32> { return vec4<f32>(d_o[o], d_o[o + 1u], d_o[o + 2u], d_o[o + 3u]); }
fn ld_k(o: u32) -> vec4<f32> { return vec4<f32>(k[o], k[o + 1u], k[o + 2u], k[o + 3u]); }
fn ld_v(o: u32) -> vec4<f32> { return vec4<f32>(v[o], v[o + 1u], v[o + 2u], v[o + 3u]); }

@compute @workgroup_size({{ bk }}, 1, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let nh = info[1];
    let tk = info[3];
    let t_past = info[4];
    let scale = bitcast<f32>(info[5]);
    let bh = wid.y;
    let b = bh / nh;
    let key0 = wid.x * BK;
    let j = key0 + lid.x;

    if lid.x == 0u {
        let tt = info[2];
        var f = 0u;
        loop {
            if f >= tk || pad[b * tk + f] < 0.5 { break; }
            f += 1u;
        }
        wg_first = f;
        wg_ndead = select(0u, min(f - t_past, tt), f > t_past); // rows [0, n_dead) are dead
        wg_qstart = select(0u, key0 - t_past, key0 > t_past);  // first row that sees this block
        wg_t = tt;
    }
    let first = workgroupUniformLoad(&wg_first);
    let n_dead = workgroupUniformLoad(&wg_ndead);
    let q_start = workgroupUniformLoad(&wg_qstart);
    let t = workgroupUniformLoad(&wg_t);

    let jc = min(j, tk - 1u);
    let key_in = j < tk;
    let key_ok = key_in && pad[b * tk + jc] < 0.5;
    var kr: array<vec4<f32>, HS4>;
    var vr: array<vec4<f32>, HS4>;
    var dkr: array<vec4<f32>, HS4>;
    var dvr: array<vec4<f32>, HS4>;
    let kbase = (bh * tk + jc) * HS;
    for (var d = 0u; d < HS4; d++) {
        kr[d] = ld_k(kbase + 4u * d) * scale;
        vr[d] = ld_v(kbase + 4u * d);
        dkr[d] = vec4<f32>(0.0);
        dvr[d] = vec4<f32>(0.0);
    }

    for (var qt0 = 0u; qt0 < t; qt0 += BQ) {
        if qt0 + BQ <= q_start && qt0 >= n_dead { continue; } // no row of this tile touches the block
        workgroupBarrier();
        for (var e = lid.x; e < BQ * HS4; e += BK) {
            let ii = qt0 + e / HS4;
            if ii < t {
                let g = (bh * t + ii) * HS + 4u * (e % HS4);
                qs[e] = ld_q(g);
                dos[e] = ld_do(g);
            } else {
                qs[e] = vec4<f32>(0.0);
                dos[e] = vec4<f32>(0.0);
            }
        }
        for (var e = lid.x; e < BQ; e += BK) {
            let ii = min(qt0 + e, t - 1u);
            ls[e] = lse[bh * t + ii];
            ds[e] = dd[bh * t + ii];
        }
        workgroupBarrier();
        let rn = min(BQ, t - qt0);
        for (var ii = 0u; ii < rn; ii++) {
            let qpos = t_past + qt0 + ii;
            if key_ok && j <= qpos {
                var s = 0.0;
                var dp = 0.0;
                for (var d = 0u; d < HS4; d++) {
                    s += dot(qs[ii * HS4 + d], kr[d]);
                    dp += dot(dos[ii * HS4 + d], vr[d]);
                }
                let p = exp(s - ls[ii]);
                let dsv = p * (dp - ds[ii]);
                for (var d = 0u; d < HS4; d++) {
                    dvr[d] += p * dos[ii * HS4 + d];
                    dkr[d] += dsv * qs[ii * HS4 + d];
                }
            } else if key_in && qpos < first {
                let p = exp(-ls[ii]); // dead row: uniform 1/Tk
                for (var d = 0u; d < HS4; d++) {
                    dvr[d] += p * dos[ii * HS4 + d];
                }
            }
        }
    }

    if key_in {
        let o = (bh * tk + j) * HS;
        for (var d = 0u; d < HS4; d++) {
            let a = dkr[d] * scale;
            let c = dvr[d];
            dk[o + 4u * d] = a.x;
            dk[o + 4u * d + 1u] = a.y;
            dk[o + 4u * d + 2u] = a.z;
            dk[o + 4u * d + 3u] = a.w;
            dv[o + 4u * d] = c.x;
            dv[o + 4u * d + 1u] = c.y;
            dv[o + 4u * d + 2u] = c.z;
            dv[o + 4u * d + 3u] = c.w;
        }
    }
}
