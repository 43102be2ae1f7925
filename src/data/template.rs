//! The one prompt template used by SFT, sampling, the reward model and PPO.
//!
//! ```text
//! {prompt}\nResponse: {response}<|endoftext|>
//! ```
//! The prompt part is everything up to and including `"Response:"`; the response starts with a
//! space and ends with `<|endoftext|>`, which teaches the model to stop.

/// The text a model is conditioned on for `prompt`.
pub fn render_prompt(prompt: &str) -> String {
    format!("{}\nResponse:", prompt.trim_end())
}

/// The text of a response as it follows the rendered prompt (leading space added).
pub fn render_response(response: &str) -> String {
    format!(" {}", response.trim())
}

#[cfg(test)]
mod tests {
    #[test]
    fn template_shape() {
        assert_eq!(
            super::render_prompt("Define: Cat "),
            "Define: Cat\nResponse:"
        );
        assert_eq!(super::render_response(" A cat."), " A cat.");
    }
}
