// ranking_loss.wgsl: the InstructGPT reward-model ranking loss and its gradient, in one pass.
//
// For P prompts with K_p ranked responses each (2 <= K_p <= 9, ragged), rewards laid out
// prompt-major and best first within a prompt (flat, N = sum K_p):
//
//   L = (1/P) sum_p  -1/C(K_p,2) sum_{i<j} log sigmoid(r_{p,i} - r_{p,j})
//
// with -log sigmoid(d) = softplus(-d). The derivative of softplus(-d) w.r.t. d is -sigmoid(-d),
// so each pair (i, j) adds -s * scale to dL/dr_i and +s * scale to dL/dr_j, s = sigmoid(-d),
// scale = 1 / (P * C(K_p,2)).
//
// Layout of the bindings:
//   rewards (N,)       the rewards, read only.
//   result  (N + P,)   result[0..N]   = dL/dr for every reward;
//                      result[N + p]  = prompt p's share of L, i.e. its mean pair loss / P.
//                      The host sums result[N..N+P] with a burn op to get L (shape (1,)); that
//                      keeps the kernel free of cross-workgroup reductions and atomics on f32.
//   info    (P + 3,)   [P, N, off_0, off_1, ..., off_P]: off_p is prompt p's first reward,
//                      off_P = N, so K_p = off_{p+1} - off_p.
//
// One invocation per prompt: K <= 9 gives at most 36 pairs, done serially in registers.
//
// Numerical stability (reward gaps up to +-80 and beyond):
//   softplus(x) = max(x, 0) + log1p(exp(-|x|))   exp of a non-positive number never overflows;
//   sigmoid(x)  = 1/(1+e) if x >= 0, e/(1+e) otherwise, with e = exp(-|x|) in (0, 1];
//   log1p(y)    for y in [0, 1] as 2*atanh(y / (2 + y)), an odd series in z = y/(2+y) <= 1/3
//               (WGSL has no log1p; log(1 + y) would round 1 + y to 1 for y < 6e-8).

@group(0) @binding(0) var<storage, read_write> rewards: array<f32>;
@group(0) @binding(1) var<storage, read_write> result: array<f32>;
@group(0) @binding(2) var<storage, read_write> info: array<u32>;

const MAX_K: u32 = 9u;

// log(1 + y) for y in [0, 1]: 2 * atanh(z), z = y / (2 + y) in [0, 1/3].
// Terms through z^15; the first omitted term, z^17 / 17 * 2, is below 2e-9 relative.
fn log1p_unit(y: f32) -> f32 {
    let z = y / (2.0 + y);
    let z2 = z * z;
    let series = 1.0 + z2 * (1.0 / 3.0 + z2 * (1.0 / 5.0 + z2 * (1.0 / 7.0 + z2 * (1.0 / 9.0
        + z2 * (1.0 / 11.0 + z2 * (1.0 / 13.0 + z2 * (1.0 / 15.0)))))));
    return 2.0 * z * series;
}

fn softplus(x: f32) -> f32 {
    return max(x, 0.0) + log1p_unit(exp(-abs(x)));
}

fn sigmoid(x: f32) -> f32 {
    let e = exp(-abs(x));
    return select(e / (1.0 + e), 1.0 / (1.0 + e), x >= 0.0);
}

@compute @workgroup_size({{ wg }}, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let n_prompts = info[0];
    let n = info[1];
    let p = gid.x;
    if p >= n_prompts {
        return;
    }
    let start = info[2u + p];
    let k = min(info[3u + p] - start, MAX_K);

    var r: array<f32, 9>;
    var g: array<f32, 9>;
    for (var i = 0u; i < k; i++) {
        r[i] = rewards[start + i];
        g[i] = 0.0;
    }

    var loss = 0.0;
    for (var i = 0u; i < k; i++) {
        for (var j = i + 1u; j < k; j++) {
            let d = r[i] - r[j]; // the better response's margin
            loss += softplus(-d);
            let s = sigmoid(-d);
            g[i] -= s;
            g[j] += s;
        }
    }

    let pairs = max(k * (k - 1u) / 2u, 1u); // the host guarantees k >= 2
    let scale = 1.0 / (f32(n_prompts) * f32(pairs));
    for (var i = 0u; i < k; i++) {
        result[start + i] = g[i] * scale;
    }
    result[n + p] = loss * scale;
}
