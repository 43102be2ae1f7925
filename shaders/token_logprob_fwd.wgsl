// token_logprob_fwd.wgsl: the log-probability of each row's target token under the softmax of
// its logits, one workgroup per row:
//
//   lse = max + log Σ_v exp(logits[v] − max),   lp = logits[target] − lse
//
// The workgroup's invocations take every {{ wg }}-th logit of the row, then combine their maxima
// and their sums in workgroup memory, halving the active invocations each round, so the order
// of every sum is fixed and a run gives the same bits each time. It writes lp and lse (the
// backward's input, `token_logprob_bwd.wgsl`); no (N, V) softmax is ever stored.
//
// Bindings:
//   logits (N·V,), targets (N,) ids as floats (exact below 2²⁴)   read only
//   lp (N,), lse (N,)
//   info [N, V]

@group(0) @binding(0) var<storage, read_write> logits: array<f32>;
@group(0) @binding(1) var<storage, read_write> targets: array<f32>;
@group(0) @binding(2) var<storage, read_write> lp: array<f32>;
@group(0) @binding(3) var<storage, read_write> lse: array<f32>;
@group(0) @binding(4) var<storage, read_write> info: array<u32>;

const WG: u32 = {{ wg }}u;

var<workgroup> part: array<f32, {{ wg }}>;

// part[0] = the max (op 0) or the sum (op 1) of part[0..WG], combined pairwise in a fixed order
fn combine(lid: u32, op: u32) {
    for (var s = WG / 2u; s > 0u; s = s / 2u) {
        workgroupBarrier();
        if lid < s {
            let a = part[lid];
            let b = part[lid + s];
            part[lid] = select(a + b, max(a, b), op == 0u);
        }
    }
    workgroupBarrier();
}

@compute @workgroup_size({{ wg }}, 1, 1)
fn main(
    @builtin(local_invocation_id) lid3: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    let lid = lid3.x;
    let n = info[0];
    let v = info[1];
    // the same for every invocation of the workgroup: the barriers stay in uniform control flow
    let row = wid.y * groups.x + wid.x;
    let live = row < n;
    let base = row * v;
    var m = -3.4028235e38;
    if live {
        for (var j = lid; j < v; j += WG) {
            m = max(m, logits[base + j]);
        }
    }
    part[lid] = m;
    combine(lid, 0u);
    let top = part[0];
    workgroupBarrier();
    var s = 0.0;
    if live {
        for (var j = lid; j < v; j += WG) {
            s += exp(logits[base + j] - top);
        }
    }
    part[lid] = s;
    combine(lid, 1u);
    if live && lid == 0u {
        let l = top + log(part[0]);
        let t = min(u32(targets[row]), v - 1u);
        lse[row] = l;
        lp[row] = logits[base + t] - l;
    }
}
