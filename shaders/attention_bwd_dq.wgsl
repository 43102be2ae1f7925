// attention_bwd_dq.wgsl — fused causal attention backward, dQ (FlashAttention-2).
//
// One workgroup = one (batch·head, tile of BR query rows); one invocation = one row, holding q_i,
// dO_i, L_i, D_i and its dQ accumulator in registers. K and V stream through workgroup memory in
// tiles of BC keys, scores are recomputed: P = exp(q·k/√hs − L), dS = P ∘ (dO·v − D),
// dQ_i = Σ_j dS_ij k_j / √hs. Dead rows (all visible keys padding) get dQ = 0, as in the reference.
//
// Placeholders: {{ hs }} head size, {{ br }} rows per workgroup (= workgroup size), {{ bc }} keys
// per K/V tile; chosen per adapter like the forward (see `pick_tile`).
//
// Bindings: q, d_o (B, nh, T, hs), k, v (B, nh, Tk, hs), pad (B, Tk), lse, dd (B, nh, T),
//           dq (B, nh, T, hs), info [B, nh, T, Tk, t_past, bits(1/sqrt(hs))].

@group(0) @binding(0) var<storage, read_write> q: array<f32>;
@group(0) @binding(1) var<storage, read_write> k: array<f32>;
@group(0) @binding(2) var<storage, read_write> v: array<f32>;
@group(0) @binding(3) var<storage, read_write> pad: array<f32>;
@group(0) @binding(4) var<storage, read_write> d_o: array<f32>;
@group(0) @binding(5) var<storage, read_write> lse: array<f32>;
@group(0) @binding(6) var<storage, read_write> dd: array<f32>;
@group(0) @binding(7) var<storage, read_write> dq: array<f32>;
@group(0) @binding(8) var<storage, read_write> info: array<u32>;

const HS: u32 = {{ hs }}u;
const HS4: u32 = {{ hs }}u / 4u;
const BR: u32 = {{ br }}u;
const BC: u32 = {{ bc }}u;

var<workgroup> ks: array<vec4<f32>, {{ bc }}u * ({{ hs }}u / 4u)>;
var<workgroup> vs: array<vec4<f32>, {{ bc }}u * ({{ hs }}u / 4u)>;
var<workgroup> ps: array<f32, {{ bc }}u>;
var<workgroup> wg_first: u32;
var<workgroup> wg_end: u32;

fn ld_q(o: u32) -> vec4<f32> { return vec4<f32>(q[o], q[o + 1u], q[o + 2u], q[o + 3u]); }
fn ld_do(o: u32) -> vec4<f32> { return vec4<f32>(d_o[o], d_o[o + 1u], d_o[o + 2u], d_o[o + 3u]); }
fn ld_k(o: u32) -> vec4<f32> { return vec4<f32>(k[o], k[o + 1u], k[o + 2u], k[o + 3u]); }
fn ld_v(o: u32) -> vec4<f32> { return vec4<f32>(v[o], v[o + 1u], v[o + 2u], v[o + 3u]); }

@compute @workgroup_size({{ br }}, 1, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let nh = info[1];
    let t = info[2];
    let tk = info[3];
    let t_past = info[4];
    let scale = bitcast<f32>(info[5]);
    let bh = wid.y;
    let b = bh / nh;
    let row0 = wid.x * BR;
    let row = row0 + lid.x;
    let qpos = t_past + row;

    if lid.x == 0u {
        var f = 0u;
        loop {
            if f >= tk || pad[b * tk + f] < 0.5 { break; }
            f += 1u;
        }
        wg_first = f;
        wg_end = min(t_past + min(row0 + BR, t), tk); // keys [0, end) seen by this tile
    }
    let first = workgroupUniformLoad(&wg_first);
    let end = workgroupUniformLoad(&wg_end);
    let live = row < t && qpos >= first;

    var qr: array<vec4<f32>, HS4>;
    var dor: array<vec4<f32>, HS4>;
    var dqr: array<vec4<f32>, HS4>;
    let rc = min(row, t - 1u);
    let base = (bh * t + rc) * HS;
    for (var d = 0u; d < HS4; d++) {
        qr[d] = ld_q(base + 4u * d) * scale;
        dor[d] = ld_do(base + 4u * d);
        dqr[d] = vec4<f32>(0.0);
    }
    let li = lse[bh * t + rc];
    let di = dd[bh * t + rc];
    let kvbase = bh * tk * HS;

    for (var j0 = 0u; j0 < end; j0 += BC) {
        workgroupBarrier();
        for (var e = lid.x; e < BC * HS4; e += BR) {
            let jj = j0 + e / HS4;
            if jj < tk {
                let g = kvbase + jj * HS + 4u * (e % HS4);
                ks[e] = ld_k(g);
                vs[e] = ld_v(g);
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
            if live && j0 + jj <= qpos && ps[jj] < 0.5 {
                var s = 0.0;
                var dp = 0.0;
                for (var d = 0u; d < HS4; d++) {
                    s += dot(qr[d], ks[jj * HS4 + d]);
                    dp += dot(dor[d], vs[jj * HS4 + d]);
                }
                let dsv = exp(s - li) * (dp - di);
                for (var d = 0u; d < HS4; d++) {
                    dqr[d] += dsv * ks[jj * HS4 + d];
                }
            }
        }
    }

    if row < t {
        for (var d = 0u; d < HS4; d++) {
            let a = dqr[d] * scale;
            dq[base + 4u * d] = a.x;
            dq[base + 4u * d + 1u] = a.y;
            dq[base + 4u * d + 2u] = a.z;
            dq[base + 4u * d + 3u] = a.w;
        }
    }
}
