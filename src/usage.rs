//! Tokens and money: what one call consumed ([`Usage`]), what the relay saw of it
//! ([`Observed`]), how a missing figure is estimated ([`settle_usage`]), and what it cost
//! ([`Price::cost`]).
//!
//! Conventions (the OpenTelemetry GenAI ones, whatever the provider's own):
//! - `input_tokens` counts *every* input token, including those read from or written to a
//!   provider cache (OpenAI and Gemini report it that way; Anthropic reports the uncached part
//!   in `input_tokens` and the cache parts beside it, so its dialect adds them up).
//! - `output_tokens` counts every generated token, including reasoning tokens (OpenAI's
//!   convention; Gemini reports thoughts beside `candidatesTokenCount`, so its dialect adds
//!   them).
//!
//! Money is integer micro-dollars (µ$, 10⁻⁶ USD). Prices are µ$ per million tokens, so a
//! price is exact to 10⁻¹² USD per token, and a call's cost is rounded *up* to the next µ$ once,
//! over all its token kinds — the gateway never under-charges a call.

/// Tokens one call consumed, normalised across dialects (see the module docs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// Input tokens served from a provider cache (part of `input_tokens`).
    pub cache_read_tokens: u64,
    /// Input tokens written to a provider cache (part of `input_tokens`; Anthropic).
    pub cache_creation_tokens: u64,
    /// Output tokens spent on reasoning (part of `output_tokens`).
    pub reasoning_tokens: u64,
}

/// Prices of one deployment, in micro-dollars per million tokens.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Price {
    pub input: u64,
    pub output: u64,
    /// Input tokens read from a provider cache.
    pub cache_read: u64,
    /// Input tokens written to a provider cache.
    pub cache_write: u64,
    /// The long-context tier, when the model has one.
    pub long: Option<LongContext>,
}

/// A long-context tier: a call whose prompt is longer than `above` tokens (input tokens,
/// cached and cache-written ones included) is charged every one of its tokens, output too,
/// at these rates — how Google prices Gemini prompts over 200k tokens, Anthropic Claude's
/// 1M-token context and OpenAI prompts over 272k tokens.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LongContext {
    pub above: u64,
    pub input: u64,
    pub output: u64,
    pub cache_read: u64,
    pub cache_write: u64,
}

impl Price {
    /// The cost of `u` in micro-dollars, rounded up.
    pub fn cost(&self, u: &Usage) -> u64 {
        let (input, output, cache_read, cache_write) = match self.long {
            Some(l) if u.input_tokens > l.above => (l.input, l.output, l.cache_read, l.cache_write),
            _ => (self.input, self.output, self.cache_read, self.cache_write),
        };
        let uncached = u
            .input_tokens
            .saturating_sub(u.cache_read_tokens)
            .saturating_sub(u.cache_creation_tokens);
        let pico = u128::from(uncached) * u128::from(input)
            + u128::from(u.cache_read_tokens) * u128::from(cache_read)
            + u128::from(u.cache_creation_tokens) * u128::from(cache_write)
            + u128::from(u.output_tokens) * u128::from(output);
        u64::try_from(pico.div_ceil(1_000_000)).unwrap_or(u64::MAX)
    }
}

/// A short string held inline, so records that carry it stay `Copy` (truncated to `N` bytes
/// on a UTF-8 boundary).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct InlineStr<const N: usize> {
    len: u8,
    bytes: [u8; N],
}

impl<const N: usize> Default for InlineStr<N> {
    fn default() -> Self {
        InlineStr {
            len: 0,
            bytes: [0; N],
        }
    }
}

impl<const N: usize> InlineStr<N> {
    pub fn new(s: &[u8]) -> Self {
        let mut n = s.len().min(N).min(255);
        // Do not split a UTF-8 sequence.
        while n < s.len() && n > 0 && (s[n] & 0xc0) == 0x80 {
            n -= 1;
        }
        let mut bytes = [0; N];
        bytes[..n].copy_from_slice(&s[..n]);
        InlineStr {
            len: n as u8,
            bytes,
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl<const N: usize> std::fmt::Debug for InlineStr<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self.as_bytes()))
    }
}

/// What the relay saw of a response, filled in by the dialect as events or the body pass.
#[derive(Clone, Copy, Debug, Default)]
pub struct Observed {
    /// The latest figures the provider reported (cumulative where the provider repeats them).
    pub usage: Usage,
    /// The provider reported the input side (prompt, cache) of `usage`.
    pub input_reported: bool,
    /// The provider reported the output side of `usage`.
    pub output_reported: bool,
    /// The provider said the answer is complete (a finish reason, `message_delta`, `[DONE]`),
    /// so reported output figures are final, not a running count.
    pub finished: bool,
    /// Bytes of generated text, tool arguments and reasoning relayed (raw JSON string
    /// contents): what the output estimate counts.
    pub content_bytes: u64,
    /// An in-stream error event from the provider.
    pub error_event: bool,
    pub finish_reason: InlineStr<24>,
    pub response_model: InlineStr<64>,
    pub response_id: InlineStr<64>,
    /// Events seen (0 for a JSON body).
    pub events: u32,
    /// An Anthropic stream's content block that has started and not stopped (the index), so
    /// a stream ended by the gateway can close it.
    pub open_block: Option<u32>,
}

impl Observed {
    pub fn set_finish_reason(&mut self, r: &[u8]) {
        if self.finish_reason.is_empty() && !r.is_empty() {
            self.finish_reason = InlineStr::new(r);
        }
        self.finished = true;
    }

    pub fn set_model(&mut self, m: &[u8]) {
        if self.response_model.is_empty() {
            self.response_model = InlineStr::new(m);
        }
    }

    pub fn set_id(&mut self, id: &[u8]) {
        if self.response_id.is_empty() {
            self.response_id = InlineStr::new(id);
        }
    }
}

/// Bytes per token assumed by estimates: the usual rule of thumb for English text with
/// BPE tokenizers (and exactly the mock provider's prompt rule).
pub const ESTIMATE_BYTES_PER_TOKEN: u64 = 4;

/// Estimated tokens in `bytes` bytes of text or JSON.
pub fn estimate_tokens(bytes: u64) -> u64 {
    bytes.div_ceil(ESTIMATE_BYTES_PER_TOKEN)
}

/// The usage to charge for a response that the provider accepted (2xx head), and whether any
/// part of it is an estimate.
///
/// Reported figures win. A missing input side is estimated from the upstream request body;
/// output that was not reported as final (the stream was cut, the client left, the provider
/// omitted usage) is the larger of what was reported so far and an estimate from the content
/// bytes relayed. So a started call is never charged zero.
pub fn settle_usage(o: &Observed, upstream_request_bytes: u64) -> (Usage, bool) {
    let mut u = o.usage;
    let mut estimated = false;
    if !o.input_reported {
        u.input_tokens = estimate_tokens(upstream_request_bytes).max(1);
        u.cache_read_tokens = 0;
        u.cache_creation_tokens = 0;
        estimated = true;
    }
    if !(o.output_reported && o.finished) {
        let guess = estimate_tokens(o.content_bytes);
        u.output_tokens = u.output_tokens.max(guess);
        u.reasoning_tokens = u.reasoning_tokens.min(u.output_tokens);
        estimated = true;
    }
    (u, estimated)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompts_over_the_long_context_threshold_pay_the_long_rates_for_every_token() {
        // gemini-2.5-pro: $1.25 / $10 / $0.125 cached; over 200k tokens $2.50 / $15 / $0.25.
        let p = Price {
            input: 1_250_000,
            output: 10_000_000,
            cache_read: 125_000,
            cache_write: 1_250_000,
            long: Some(LongContext {
                above: 200_000,
                input: 2_500_000,
                output: 15_000_000,
                cache_read: 250_000,
                cache_write: 2_500_000,
            }),
        };
        let call = |input_tokens, cache_read_tokens| Usage {
            input_tokens,
            cache_read_tokens,
            output_tokens: 1000,
            ..Usage::default()
        };
        // Exactly at the threshold: the base tier. 200,000 × 1.25 + 1000 × 10 = 260,000 µ$.
        assert_eq!(p.cost(&call(200_000, 0)), 260_000);
        // One token over: every token at the long rates. 200,001 × 2.5 + 1000 × 15.
        assert_eq!(p.cost(&call(200_001, 0)), 515_003);
        // Cached tokens count towards the threshold and are charged the long cached rate:
        // 100,001 × 2.5 + 100,000 × 0.25 + 1000 × 15 = 290,003.
        assert_eq!(p.cost(&call(200_001, 100_000)), 290_003);
    }

    #[test]
    fn cost_is_integer_and_rounds_up_once() {
        // gpt-4o-mini: $0.15 / $0.60 / $0.075 cached, per million tokens.
        let p = Price {
            input: 150_000,
            output: 600_000,
            cache_read: 75_000,
            cache_write: 150_000,
            long: None,
        };
        let u = Usage {
            input_tokens: 1_000_000,
            output_tokens: 1_000_000,
            ..Usage::default()
        };
        assert_eq!(p.cost(&u), 750_000);
        // 10 input tokens = 1.5 µ$ → 2 µ$.
        let u = Usage {
            input_tokens: 10,
            ..Usage::default()
        };
        assert_eq!(p.cost(&u), 2);
        // Cached tokens at the cached price: 1000 in, 600 cached.
        let u = Usage {
            input_tokens: 1000,
            cache_read_tokens: 600,
            output_tokens: 0,
            ..Usage::default()
        };
        assert_eq!(
            p.cost(&u),
            (400 * 150_000 + 600 * 75_000_u64).div_ceil(1_000_000)
        );
        assert_eq!(Price::default().cost(&u), 0);
    }

    #[test]
    fn estimates_fill_only_what_is_missing() {
        let mut o = Observed::default();
        let (u, est) = settle_usage(&o, 401);
        assert!(est);
        assert_eq!(u.input_tokens, 101);
        assert_eq!(u.output_tokens, 0);
        o.content_bytes = 9;
        o.input_reported = true;
        o.usage.input_tokens = 19;
        o.usage.output_tokens = 1; // provisional (Anthropic message_start)
        let (u, est) = settle_usage(&o, 401);
        assert!(est);
        assert_eq!((u.input_tokens, u.output_tokens), (19, 3));
        o.output_reported = true;
        o.finished = true;
        o.usage.output_tokens = 34;
        let (u, est) = settle_usage(&o, 401);
        assert!(!est);
        assert_eq!(u.output_tokens, 34);
    }

    #[test]
    fn inline_strings_truncate_on_char_boundaries() {
        let s = InlineStr::<4>::new("aéé".as_bytes());
        assert_eq!(s.as_bytes(), "aé".as_bytes());
        assert_eq!(InlineStr::<8>::new(b"stop").as_bytes(), b"stop");
    }
}
