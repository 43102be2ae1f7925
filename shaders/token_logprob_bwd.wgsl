// token_logprob_bwd.wgsl: the gradient of the target token's log-probability in the logits, one
// invocation per logit, from the forward's log-sum-exp (`token_logprob_fwd.wgsl`):
//
//   d logits[n, v] = g[n] · ([v = target[n]] − exp(logits[n, v] − lse[n]))
//
// Bindings:
//   logits (N·V,), targets (N,) ids as floats, lse (N,), g (N,) upstream gradient   read only
//   d_logits (N·V,)
//   info [N·V, V]

@group(0) @binding(0) var<storage, read_write> logits: array<f32>;
@group(0) @binding(1) var<storage, read_write> targets: array<f32>;
@group(0) @binding(2) var<storage, read_write> lse: array<f32>;
@group(0) @binding(3) var<storage, read_write> g: array<f32>;
@group(0) @binding(4) var<storage, read_write> d_logits: array<f32>;
@group(0) @binding(5) var<storage, read_write> info: array<u32>;

@compute @workgroup_size({{ wg }}, 1, 1)
fn main(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    let e = gid.y * groups.x * {{ wg }}u + gid.x;
    if e >= info[0] {
        return;
    }
    let v = info[1];
    let row = e / v;
    let hit = select(0.0, 1.0, e - row * v == u32(targets[row]));
    d_logits[e] = g[row] * (hit - exp(logits[e] - lse[row]));
}
