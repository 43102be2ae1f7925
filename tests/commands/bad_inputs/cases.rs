//! The table of bad inputs `every_bad_input_is_a_clear_error_with_exit_code_1_and_no_output`
//! runs: each a command (with the placeholders `world` fills in), the bad file it reads, and what
//! its message must contain.

/// One row of the table: the command (placeholders below), what the message must contain.
pub(super) struct Case {
    /// `{bad}` = tests/bad_inputs/<file>, `{ckpt}` a good tiny LM checkpoint, `{ck}` the broken
    /// checkpoints' directory, `{tok}`, `{tok2}` (another tokenizer of the same size),
    /// `{corpus}`, `{rank}`, `{file}` (an existing file), `{ro}` (a read-only directory), `{dir}`
    /// scratch, `{out}` the output to check (see `world`).
    pub(super) cmd: &'static str,
    pub(super) file: &'static str,
    pub(super) expect: &'static [&'static str],
}

const SFT: &str = "sft --device cpu --init {ckpt} --data {bad} --out {out}";
const RM: &str = "rm --device cpu --init {ckpt} --data {bad} --out {out}";
const LABEL: &str = "label --samples {bad} --out {out}";
const SAMPLE: &str = "sample --device cpu --ckpt {ckpt} --prompts {bad} --out {out}";
const PRE: &str =
    "pretrain --device cpu --preset tiny --steps 2 --corpus {bad} --tokenizer {tok} --out {out}";
const PRE_TOK: &str =
    "pretrain --device cpu --preset tiny --steps 2 --corpus {corpus} --tokenizer {bad} --out {out}";
const PRE_PRESET: &str =
    "pretrain --device cpu --preset {bad} --steps 2 --corpus {corpus} --tokenizer {tok} \
     --out {out}";

const fn case(cmd: &'static str, file: &'static str, expect: &'static [&'static str]) -> Case {
    Case { cmd, file, expect }
}

#[rustfmt::skip]
pub(super) const CASES: &[Case] = &[
    case(SFT, "sft_malformed_json.jsonl", &["sft_malformed_json.jsonl:2: malformed JSON"]),
    case(
        SFT,
        "sft_wrong_type.jsonl",
        &["sft_wrong_type.jsonl:1", "field \"response\" must be a string, found a number"],
    ),
    case(
        SFT,
        "sft_missing_field.jsonl",
        &["sft_missing_field.jsonl:3", "missing field \"response\""],
    ),
    case(SFT, "sft_empty_response.jsonl", &["sft_empty_response.jsonl:1", "empty response"]),
    case(SFT, "sft_empty_prompt.jsonl", &["sft_empty_prompt.jsonl:1", "empty prompt"]),
    case(
        SFT,
        "sft_not_an_object.jsonl",
        &["sft_not_an_object.jsonl:1: expected a JSON object, found an array"],
    ),
    case(SFT, "sft_non_utf8.jsonl", &["sft_non_utf8.jsonl:2: not valid UTF-8"]),
    case(SFT, "sft_empty_file.jsonl", &["sft_empty_file.jsonl: no records"]),
    case(
        SFT,
        "sft_alpaca_null_output.jsonl",
        &["sft_alpaca_null_output.jsonl:1", "field \"output\" must be a string, found null"],
    ),
    case(
        SFT,
        "sft_unknown_format.jsonl",
        &[
            "sft_unknown_format.jsonl:1",
            "expected {\"prompt\",\"response\"}, {\"messages\"}, Alpaca",
        ],
    ),
    case(
        SFT,
        "sft_conversation_two_users.jsonl",
        &["sft_conversation_two_users.jsonl:2", "messages[3] is user where assistant was expected"],
    ),
    case(
        SFT,
        "sft_conversation_unknown_role.jsonl",
        &["sft_conversation_unknown_role.jsonl:1", "messages[1]: unknown role \"bot\""],
    ),
    case(
        SFT,
        "sft_conversation_empty_turn.jsonl",
        &["sft_conversation_empty_turn.jsonl:1", "messages[1] (assistant) has empty content"],
    ),
    case(
        SFT,
        "sft_truncated_last_line.jsonl",
        &["sft_truncated_last_line.jsonl:2: malformed JSON", "EOF"],
    ),
    case(
        RM,
        "rank_one_response.jsonl",
        &["rank_one_response.jsonl:1", "at least 2 responses, found 1", "--skip-invalid"],
    ),
    case(
        RM,
        "rank_ten_responses.jsonl",
        &["rank_ten_responses.jsonl:1", "at most 9 responses per prompt are supported, found 10"],
    ),
    case(
        RM,
        "rank_duplicate_responses.jsonl",
        &["rank_duplicate_responses.jsonl:2", "responses 0 and 1 are the same text"],
    ),
    case(
        RM,
        "rank_responses_not_array.jsonl",
        &["rank_responses_not_array.jsonl:1", "field \"responses\" must be an array"],
    ),
    case(
        RM,
        "rank_response_number.jsonl",
        &["rank_response_number.jsonl:1", "responses[1] must be a string"],
    ),
    case(
        RM,
        "rank_hh_no_shared_prefix.jsonl",
        &["rank_hh_no_shared_prefix.jsonl:1", "share no prompt prefix"],
    ),
    case(
        RM,
        "rank_missing_rejected.jsonl",
        &["rank_missing_rejected.jsonl:1", "missing field \"rejected\""],
    ),
    case(RM, "rank_non_utf8.jsonl", &["rank_non_utf8.jsonl:1: not valid UTF-8"]),
    case(RM, "rank_malformed_json.jsonl", &["rank_malformed_json.jsonl:1: malformed JSON"]),
    case(RM, "rank_empty_response.jsonl", &["rank_empty_response.jsonl:1", "response 1 is empty"]),
    case(
        LABEL,
        "samples_responses_string.jsonl",
        &[
            "samples_responses_string.jsonl:1",
            "field \"responses\" must be an array, found a string",
        ],
    ),
    case(
        LABEL,
        "samples_missing_prompt.jsonl",
        &["samples_missing_prompt.jsonl:1", "missing field \"prompt\""],
    ),
    case(SAMPLE, "prompts_blank_only.jsonl", &["prompts_blank_only.jsonl: no prompts"]),
    case(
        SAMPLE,
        "prompts_number.jsonl",
        &[
            "prompts_number.jsonl:1",
            "field \"prompt\" must be a string or an array of messages, found a number",
        ],
    ),
    case(
        SAMPLE,
        "prompts_conversation_ends_assistant.jsonl",
        &["prompts_conversation_ends_assistant.jsonl:1", "must end with a user message"],
    ),
    case(
        SAMPLE,
        "prompts_top_level_string.jsonl",
        &["prompts_top_level_string.jsonl:1: expected a JSON object, found a string"],
    ),
    case(PRE, "corpus_non_utf8.txt", &["corpus_non_utf8.txt:3: not valid UTF-8 (byte offset"]),
    case(PRE, "corpus_empty.txt", &["corpus_empty.txt: the file is empty"]),
    case(PRE_TOK, "tokenizer_malformed.json", &["loading tokenizer", "tokenizer_malformed.json"]),
    case(
        PRE_TOK,
        "tokenizer_no_eot.json",
        &["tokenizer_no_eot.json", "no token to end a response: expected one of <|im_end|>"],
    ),
    case(
        PRE_PRESET,
        "preset_heads_do_not_divide.toml",
        &["n_embd (64) must be divisible by n_head (5)"],
    ),
    case(
        PRE_PRESET,
        "preset_wrong_type.toml",
        &["parsing preset", "preset_wrong_type.toml", "n_layer"],
    ),
    // missing files
    case(
        "sft --device cpu --init {ckpt} --data {dir}/nope.jsonl --out {out}",
        "",
        &["opening", "nope.jsonl", "No such file"],
    ),
    case(
        "pretrain --device cpu --preset tiny --corpus {dir}/nope.txt --tokenizer {tok} --out {out}",
        "",
        &["reading", "nope.txt", "No such file"],
    ),
    case(
        "pretrain --device cpu --preset tiny --corpus {corpus} --tokenizer {dir}/nope.json \
         --out {out}",
        "",
        &["loading tokenizer", "nope.json"],
    ),
    case(
        "sample --device cpu --ckpt {dir}/no_ckpt --prompts {bad} --out {out}",
        "prompts_number.jsonl",
        &["no_ckpt does not exist"],
    ),
    case(
        "sample --device cpu --ckpt {dir} --prompts {bad} --out {out}",
        "prompts_number.jsonl",
        &["is not a checkpoint (no model.safetensors"],
    ),
    // broken checkpoints (made by `broken_checkpoints`)
    case(
        "sample --device cpu --ckpt {ck}/garbage --prompts {bad} --out {out}",
        "prompts_number.jsonl",
        &["garbage/model.safetensors: not a readable safetensors file", "corrupt or truncated"],
    ),
    case(
        "sample --device cpu --ckpt {ck}/truncated --prompts {bad} --out {out}",
        "prompts_number.jsonl",
        &["truncated/model.safetensors: not a readable safetensors file"],
    ),
    case(
        "sample --device cpu --ckpt {ck}/deeper --prompts {bad} --out {out}",
        "prompts_number.jsonl",
        &[
            "deeper/model.safetensors: missing tensors",
            "h.2.attn.c_attn.bias",
            "another architecture",
        ],
    ),
    case(
        "sample --device cpu --ckpt {ck}/shorter_ctx --prompts {bad} --out {out}",
        "prompts_number.jsonl",
        &["shorter_ctx/model.safetensors: Shape mismatch for 'wpe.weight'"],
    ),
    case(
        "sample --device cpu --ckpt {ck}/nan --prompts {bad} --out {out}",
        "prompts_number.jsonl",
        &[
            "nan/model.safetensors: not loading it",
            "1 tensor(s) hold NaN or infinite values (wte.weight)",
        ],
    ),
    case(
        "sample --device cpu --ckpt {ck}/other_tokenizer --prompts {bad} --out {out}",
        "prompts_number.jsonl",
        &["tokenizer has 300 tokens but the model's vocabulary is 512"],
    ),
    case(
        "sample --device cpu --ckpt {ck}/bad_config --prompts {bad} --out {out}",
        "prompts_number.jsonl",
        &["parsing", "bad_config/config.json"],
    ),
    case(
        "score --device cpu --rm {ckpt} --data {bad} --out {out}",
        "prompts_number.jsonl",
        &["is a 'lm' checkpoint, not a reward model"],
    ),
    // PPO settings that would panic or train off-policy mid-run are refused before any work
    case(
        "ppo --device cpu --policy {ckpt} --reward-token , --prompts {dir}/p.jsonl \
         --reward-clip=-1 --out {out}",
        "",
        &["reward clip must be a finite number > 0", "got -1"],
    ),
    case(
        "ppo --device cpu --policy {ckpt} --reward-token , --prompts {dir}/p.jsonl \
         --reward-clip=NaN --out {out}",
        "",
        &["reward clip must be a finite number > 0", "got NaN"],
    ),
    case(
        "ppo --device cpu --policy {ckpt} --reward-token , --prompts {dir}/p.jsonl \
         --temperature=0 --out {out}",
        "",
        &["temperature must be a finite number > 0", "got 0"],
    ),
    case(
        "pretrain --device cpu --preset tiny --n-layer 3 --corpus {corpus} --tokenizer {tok} \
         --resume --out {ck}/resume_dir",
        "",
        &["cannot resume from", "resume_dir/ckpt", "n_layer: 2", "n_layer: 3"],
    ),
    case(
        PRE,
        "corpus_shorter_than_a_window.txt",
        &[
            "corpus_shorter_than_a_window.txt is",
            "tokens long, fewer than the 66 that one training window \
             of the context (64 tokens) needs",
            "a longer corpus",
        ],
    ),
    case(
        SFT,
        "sft_one_demonstration.jsonl",
        &[
            "sft_one_demonstration.jsonl: \
             1 demonstrations are too few to hold 1 out (--val-fraction 0.05)",
            "give more demonstrations",
        ],
    ),
    // splits that leave nothing to train on or to evaluate
    case(
        "pretrain --device cpu --preset tiny --steps 2 --corpus {corpus} --tokenizer {tok} \
         --val-fraction 0.999 --out {out}",
        "",
        &[
            "--val-fraction 0.999 leaves",
            "corpus.txt to train on, fewer than the 66 that one training window needs; \
             lower --val-fraction",
        ],
    ),
    case(
        "pretrain --device cpu --preset tiny --steps 2 --corpus {corpus} --tokenizer {tok} \
         --val-fraction 0.001 --batch-size 4 --out {out}",
        "",
        &[
            "--val-fraction 0.001 holds out",
            "corpus.txt, fewer than the 257 that one held-out batch of 4×64 needs; \
             raise --val-fraction or lower --batch-size",
        ],
    ),
    case(
        "rm --device cpu --init {ckpt} --data {rank} --val-fraction 0.995 --out {out}",
        "",
        &[
            "rankings.jsonl: 60 prompts are too few to hold 60 out (--val-fraction 0.995)",
            "lower --val-fraction",
        ],
    ),
    case(
        "ppo --device cpu --policy {ckpt} --reward-token , --prompts {dir}/p.jsonl --algo rloo \
         --rloo-k 5 --rollout-batch 16 --out {out}",
        "",
        &["RLOO needs at least 2 samples per prompt (--rloo-k) \
           dividing the rollout batch (16 responses), got 5"],
    ),
    // outputs that cannot be written
    case(
        "pretrain --device cpu --preset tiny --steps 2 --corpus {corpus} --tokenizer {tok} \
         --out {file}",
        "",
        &["--out ", "a_file is a file, not a directory; give a new directory"],
    ),
    case(
        "pretrain --device cpu --preset tiny --steps 2 --corpus {corpus} --tokenizer {tok} \
         --out {file}/run",
        "",
        &["creating the output directory ", "a_file/run: Not a directory"],
    ),
    case(
        "sample --device cpu -k 1 --max-new-tokens 4 --ckpt {ckpt} --prompts {dir}/p.jsonl \
         --out {file}/s.jsonl",
        "",
        &["cannot write ", "a_file/s.jsonl: ", "a_file is a file, not a directory"],
    ),
    case(
        "pretrain --device cpu --preset tiny --steps 2 --corpus {corpus} --tokenizer {tok} \
         --out {ro}/run",
        "",
        &["creating the output directory ", "read_only/run: Permission denied"],
    ),
    // --resume onto a damaged checkpoint: refused, naming the file; the checkpoint is left as it
    // was
    case(
        "pretrain --device cpu --preset tiny --steps 2 --corpus {corpus} --tokenizer {tok} \
         --resume --out {ck}/resume_optimizer",
        "",
        &[
            "cannot resume from ",
            "resume_optimizer/ckpt: reading ",
            "resume_optimizer/ckpt/optimizer.bpk",
            "the checkpoint is corrupt or truncated: start over with a new --out",
        ],
    ),
    case(
        "pretrain --device cpu --preset tiny --steps 2 --corpus {corpus} --tokenizer {tok} \
         --resume --out {ck}/resume_optimizer_truncated",
        "",
        &[
            "cannot resume from ",
            "resume_optimizer_truncated/ckpt/optimizer.bpk",
            "corrupt or truncated",
        ],
    ),
    case(
        "pretrain --device cpu --preset tiny --steps 2 --corpus {corpus} --tokenizer {tok} \
         --resume --out {ck}/resume_state",
        "",
        &[
            "cannot resume from ",
            "parsing ",
            "resume_state/ckpt/train_state.json: EOF while parsing",
            "corrupt or truncated",
        ],
    ),
    case(
        "pretrain --device cpu --preset tiny --steps 2 --corpus {corpus} --tokenizer {tok} \
         --resume --out {ck}/resume_ids",
        "",
        &[
            "cannot resume from ",
            "parsing ",
            "resume_ids/ckpt/param_ids.json: EOF while parsing",
            "corrupt or truncated",
        ],
    ),
    case(
        "pretrain --device cpu --preset tiny --steps 2 --corpus {corpus} --tokenizer {tok} \
         --resume --out {ck}/resume_ids_short",
        "",
        &[
            "cannot resume from ",
            "resume_ids_short/ckpt/param_ids.json: 2 ids (2 distinct) \
             for a model of 28 parameter tensors",
            "corrupt or truncated",
        ],
    ),
    // --resume onto another model or tokenizer
    case(
        "pretrain --device cpu --preset small --steps 2 --corpus {corpus} --tokenizer {tok} \
         --resume --out {ck}/resume_dir",
        "",
        &[
            "cannot resume from ",
            "resume_dir/ckpt: it holds a different model",
            "n_embd: 64",
            "n_embd: 128",
        ],
    ),
    case(
        "pretrain --device cpu --preset tiny --steps 2 --corpus {corpus} \
         --tokenizer {ck}/other_tokenizer/tokenizer.json --resume --out {ck}/resume_dir",
        "",
        &[
            "cannot resume from ",
            "resume_dir/ckpt: it holds a different model",
            "vocab_size: 512",
            "vocab_size: 300",
        ],
    ),
    case(
        "pretrain --device cpu --preset tiny --steps 2 --corpus {corpus} --tokenizer {tok2} \
         --resume --out {ck}/resume_dir",
        "",
        &[
            "cannot resume from ",
            "resume_dir/ckpt: it was trained with another tokenizer (",
            "resume_dir/ckpt/tokenizer.json) than the one this run uses, \
             though both have 512 tokens",
        ],
    ),
    case(
        "sft --device cpu --steps 2 --init {ck}/same_size_tokenizer --data {dir}/in/sft.jsonl \
         --resume --out {ck}/sft_resume_dir",
        "",
        &[
            "cannot resume from ",
            "sft_resume_dir/ckpt: it was trained with another tokenizer",
            "both have 512 tokens",
        ],
    ),
];
