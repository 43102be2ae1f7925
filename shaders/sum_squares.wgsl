// sum_squares.wgsl: one tensor's Σ g² into its slots of a table of partial sums, the rest of the
// table copied through. A step calls it once per gradient tensor, each call's table the next
// one's input, and sums the finished table once: the global gradient norm in one dispatch per
// tensor and one more, where burn's ops take three per tensor.
//
// The call's G workgroups (G ≤ SLOTS) each take every (G·{{ wg }})-th element from their
// invocation's start, then combine their invocations' sums in workgroup memory, halving the
// active invocations each round; workgroup k writes slot k of row `row`. Every sum has a fixed
// order, so a run gives the same bits each time. Slots of the row past G keep the input's values
// (0 in a fresh table).
//
// Bindings:
//   table_in (R·SLOTS,), g (N,)   read only
//   table_out (R·SLOTS,)
//   info [N, row, G, R·SLOTS]

@group(0) @binding(0) var<storage, read_write> table_in: array<f32>;
@group(0) @binding(1) var<storage, read_write> g: array<f32>;
@group(0) @binding(2) var<storage, read_write> table_out: array<f32>;
@group(0) @binding(3) var<storage, read_write> info: array<u32>;

const WG: u32 = {{ wg }}u;
const SLOTS: u32 = {{ slots }}u;

var<workgroup> part: array<f32, {{ wg }}>;

@compute @workgroup_size({{ wg }}, 1, 1)
fn main(
    @builtin(local_invocation_id) lid3: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
) {
    let lid = lid3.x;
    let n = info[0];
    let row = info[1];
    let groups = info[2];
    let total = info[3];
    let k = wid.x;
    let stride = groups * WG;
    // the table, but for the slots this call writes
    let first = row * SLOTS;
    for (var i = k * WG + lid; i < total; i += stride) {
        if i < first || i >= first + groups {
            table_out[i] = table_in[i];
        }
    }
    var s = 0.0;
    for (var i = k * WG + lid; i < n; i += stride) {
        let x = g[i];
        s += x * x;
    }
    part[lid] = s;
    for (var h = WG / 2u; h > 0u; h = h / 2u) {
        workgroupBarrier();
        if lid < h {
            part[lid] = part[lid] + part[lid + h];
        }
    }
    workgroupBarrier();
    if lid == 0u {
        table_out[first + k] = part[0];
    }
}
