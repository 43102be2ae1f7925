//! A WGSL kernel with a 1-D workgroup of `{{ wg }}` invocations, an input, an output and an
//! `info` binding of u32 words, as the ranking-loss and dropout kernels are: its final text, its
//! cache key and its launch (the `info` upload counted with the program's other transfers).

use crate::util::tensors::count_upload;
use burn::backend::wgpu::{CubeTensor, KernelSource, SourceKernel, SourceTemplate};
use burn::cubecl::prelude::KernelId;
use burn::cubecl::server::KernelArguments;
use burn::cubecl::{CubeCount, CubeDim};

/// One such kernel: `name` tells kernels apart in the compile cache, `text` is the shader.
pub struct Wgsl1d {
    pub name: &'static str,
    pub text: &'static str,
    /// Invocations per workgroup (`{{ wg }}` in the text).
    pub wg: u32,
}

impl Wgsl1d {
    /// The text as the adapter compiles it.
    pub fn final_text(&self) -> String {
        self.source().complete()
    }

    /// Runs the kernel over `groups` workgroups: bindings `input`, `output`, `info`.
    pub fn launch(self, groups: (u32, u32), input: &CubeTensor, output: &CubeTensor, info: &[u32]) {
        let client = &input.client;
        let info_h = client.create_from_slice(bytemuck::cast_slice(info));
        count_upload(std::mem::size_of_val(info));
        let cube_dim = CubeDim::new_3d(self.wg, 1, 1);
        client.launch(
            Box::new(SourceKernel::new(self, cube_dim)),
            CubeCount::Static(groups.0, groups.1, 1),
            KernelArguments::new().with_buffers(vec![
                input.handle.clone().binding(),
                output.handle.clone().binding(),
                info_h.binding(),
            ]),
        );
    }
}

impl KernelSource for Wgsl1d {
    fn source(&self) -> SourceTemplate {
        SourceTemplate::new(self.text).register("wg", self.wg.to_string())
    }

    fn id(&self) -> KernelId {
        KernelId::new::<Self>().info((self.name, self.wg))
    }

    fn lang(&self) -> &'static str {
        "wgsl"
    }
}
