// dropout.wgsl: output = input * mask, the mask drawn here from a counter-based RNG, so no mask is
// ever made on the host, uploaded or stored for the backward (which is this kernel on dO).
//
// The mask is bit for bit the one the CPU backend draws (`model::dropout::mask_values`): the
// elements of a micro-batch's rows read the SplitMix64 stream of that micro-batch, two 32-bit
// halves per 64-bit number (low half first), the number at index n being
//
//   mix(seed + (n + 1) * 0x9E3779B97F4A7C15),  mix(z) = z ^= z >> 30; z *= 0xBF58476D1CE4E5B9;
//                                               z ^= z >> 27; z *= 0x94D049BB133111EB; z ^ z >> 31
//
// so element j of row r of a micro-batch (r counted from its first row) is its stream's element
// l = r * width + j, the (l % 2) half of number start + l / 2. A half below `threshold` keeps the
// element (value * 1/keep), otherwise it is 0. Elements j >= width (padding positions a
// micro-batch padded to a shorter length never had) are 0.
// WGSL has no 64-bit integers: a u64 is a vec2<u32> (low, high) and the arithmetic is spelled out.
//
// Bindings:
//   input  (N,)  read only
//   output (N,)
//   info   [N, per_row, threshold, bits of scale (f32), S, then per micro-batch s < S:
//           row_end_s, width_s, seed_lo, seed_hi, start_lo, start_hi]
//           rows [row_end_{s-1}, row_end_s) belong to micro-batch s; start is the stream index
//           its first element reads (the numbers earlier dropout sites of the step used).

@group(0) @binding(0) var<storage, read_write> input: array<f32>;
@group(0) @binding(1) var<storage, read_write> output: array<f32>;
@group(0) @binding(2) var<storage, read_write> info: array<u32>;

// a + b mod 2^64
fn add64(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> {
    let lo = a.x + b.x;
    let carry = select(0u, 1u, lo < a.x);
    return vec2<u32>(lo, a.y + b.y + carry);
}

// the full 64-bit product of two u32, from 16-bit halves (every partial product fits in a u32)
fn mul32(a: u32, b: u32) -> vec2<u32> {
    let a0 = a & 0xFFFFu;
    let a1 = a >> 16u;
    let b0 = b & 0xFFFFu;
    let b1 = b >> 16u;
    let p00 = a0 * b0;
    let p01 = a0 * b1;
    let p10 = a1 * b0;
    let p11 = a1 * b1;
    let mid = (p00 >> 16u) + (p01 & 0xFFFFu) + (p10 & 0xFFFFu);
    let lo = (p00 & 0xFFFFu) | (mid << 16u);
    let hi = p11 + (p01 >> 16u) + (p10 >> 16u) + (mid >> 16u);
    return vec2<u32>(lo, hi);
}

// a * b mod 2^64
fn mul64(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> {
    let low = mul32(a.x, b.x);
    return vec2<u32>(low.x, low.y + a.x * b.y + a.y * b.x);
}

// a ^ (a >> k) for 0 < k < 32
fn xorshr(a: vec2<u32>, k: u32) -> vec2<u32> {
    let s = vec2<u32>((a.x >> k) | (a.y << (32u - k)), a.y >> k);
    return a ^ s;
}

fn splitmix_at(seed: vec2<u32>, n: vec2<u32>) -> vec2<u32> {
    let gamma = vec2<u32>(0x7F4A7C15u, 0x9E3779B9u);
    var z = add64(seed, mul64(add64(n, vec2<u32>(1u, 0u)), gamma));
    z = mul64(xorshr(z, 30u), vec2<u32>(0x1CE4E5B9u, 0xBF58476Du));
    z = mul64(xorshr(z, 27u), vec2<u32>(0x133111EBu, 0x94D049BBu));
    return xorshr(z, 31u);
}

@compute @workgroup_size({{ wg }}, 1, 1)
fn main(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    let n = info[0];
    let e = gid.y * groups.x * {{ wg }}u + gid.x;
    if e >= n {
        return;
    }
    let per_row = info[1];
    let threshold = info[2];
    let scale = bitcast<f32>(info[3]);
    let segments = info[4];
    let row = e / per_row;
    var s = 0u;
    var row_start = 0u;
    // few micro-batches (a handful): a scan is cheaper than anything cleverer
    for (; s + 1u < segments; s++) {
        let row_end = info[5u + 6u * s];
        if row < row_end {
            break;
        }
        row_start = row_end;
    }
    let base = 5u + 6u * s;
    let width = info[base + 1u];
    let seed = vec2<u32>(info[base + 2u], info[base + 3u]);
    let start = vec2<u32>(info[base + 4u], info[base + 5u]);
    let j = e - row * per_row;
    let l = (row - row_start) * width + j;
    let x = splitmix_at(seed, add64(start, vec2<u32>(l >> 1u, 0u)));
    let half = select(x.y, x.x, (l & 1u) == 0u);
    let m = select(0.0, scale, half < threshold && j < width);
    output[e] = input[e] * m;
}
