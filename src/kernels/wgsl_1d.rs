//! A WGSL kernel with a 1-D workgroup of `{{ wg }}` invocations, storage buffers and last an
//! `info` binding of u32 words, as the ranking-loss, dropout, LayerNorm and token log-probability
//! kernels are: its final text, its cache key, its launch (the `info` upload counted with the
//! program's other transfers) and the 2-D workgroup grid that covers a count of items.

use crate::util::tensors::count_upload;
use burn::backend::wgpu::{CubeTensor, KernelSource, SourceKernel, SourceTemplate};
use burn::cubecl::prelude::KernelId;
use burn::cubecl::server::KernelArguments;
use burn::cubecl::{CubeCount, CubeDim};

/// Workgroups along x before the grid grows along y (a dimension holds at most 65,535).
const MAX_GROUPS_X: u64 = 65_535;

/// Workgroups (x, y) for `items` work items of which one workgroup takes `per_group`: the
/// shaders read item `(wid.y · groups.x + wid.x) · per_group + lid` and skip those past the end.
pub fn grid(items: usize, per_group: u32) -> (u32, u32) {
    let groups = (items as u64).div_ceil(per_group.max(1) as u64).max(1);
    let x = groups.min(MAX_GROUPS_X);
    (x as u32, groups.div_ceil(x) as u32)
}

/// A new contiguous tensor of `dims` with `like`'s element type on its device, its contents left
/// unwritten.
pub fn empty_like(like: &CubeTensor, dims: &[usize]) -> CubeTensor {
    let shape: burn::backend::Shape = dims.iter().copied().collect();
    let n = shape.num_elements();
    let client = like.client.clone();
    CubeTensor::new_contiguous(
        client.clone(),
        like.device.clone(),
        shape,
        client.empty(n * like.dtype.size()),
        like.dtype,
    )
}

/// (rows, columns) of a 2-D tensor.
pub fn rows_cols(x: &CubeTensor) -> (usize, usize) {
    let [n, c] = x.meta.shape().dims::<2>();
    (n, c)
}

/// One such kernel: `name` tells kernels apart in the compile cache, `text` is the shader.
pub struct Wgsl1d {
    pub name: &'static str,
    pub text: &'static str,
    /// Invocations per workgroup (`{{ wg }}` in the text).
    pub wg: u32,
    /// Other constants the text reads, `{{ name }}` each.
    pub extra: &'static [(&'static str, u32)],
}

impl Wgsl1d {
    /// The text as the adapter compiles it.
    pub fn final_text(&self) -> String {
        self.source().complete()
    }

    /// Runs the kernel over `groups` workgroups: bindings `input`, `output`, `info`.
    pub fn launch(self, groups: (u32, u32), input: &CubeTensor, output: &CubeTensor, info: &[u32]) {
        self.launch_buffers(groups, &[input, output], info);
    }

    /// Runs the kernel over `groups` workgroups: `buffers` bound in order from binding 0, then
    /// `info`. Each buffer must be contiguous (the shaders index them flat).
    pub fn launch_buffers(self, groups: (u32, u32), buffers: &[&CubeTensor], info: &[u32]) {
        let Some(first) = buffers.first() else {
            return;
        };
        let client = first.client.clone();
        let info_h = client.create_from_slice(bytemuck::cast_slice(info));
        count_upload(std::mem::size_of_val(info));
        let cube_dim = CubeDim::new_3d(self.wg, 1, 1);
        let mut bindings: Vec<_> = buffers.iter().map(|b| b.handle.clone().binding()).collect();
        bindings.push(info_h.binding());
        client.launch(
            Box::new(SourceKernel::new(self, cube_dim)),
            CubeCount::Static(groups.0, groups.1, 1),
            KernelArguments::new().with_buffers(bindings),
        );
    }
}

impl KernelSource for Wgsl1d {
    fn source(&self) -> SourceTemplate {
        let mut t = SourceTemplate::new(self.text).register("wg", self.wg.to_string());
        for (name, value) in self.extra {
            t = t.register(*name, value.to_string());
        }
        t
    }

    fn id(&self) -> KernelId {
        KernelId::new::<Self>().info((self.name, self.wg, self.extra))
    }

    fn lang(&self) -> &'static str {
        "wgsl"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_grid_covers_every_item_within_the_limits() {
        assert_eq!(grid(0, 256), (1, 1));
        assert_eq!(grid(1, 256), (1, 1));
        assert_eq!(grid(256 * 10 + 1, 256), (11, 1));
        assert_eq!(grid(70_000, 1), (65_535, 2));
        let n = 256 * 70_000;
        let (x, y) = grid(n, 256);
        assert!(x as u64 <= MAX_GROUPS_X && (x as usize * y as usize * 256) >= n);
    }
}
