/**
 * Published reference numbers the evaluation is reported beside.
 * Diffusion-LM (Li et al., NeurIPS 2022, Table 2, E2E): control success % / lm-score (perplexity of the output under
 * an autoregressive LM fine-tuned on E2E; lower is better). TGen: the E2E challenge baseline (test set, official
 * multi-reference metrics).
 */
export interface PublishedControl {
  /** Success in percent. */
  success: number;
  lmScore: number;
  /** What the paper's success measures, in words. */
  metric: string;
  /** Which of our per-control figures is the like-for-like comparison. */
  compare: 'success' | 'score';
}

export const DIFFUSION_LM_E2E: Record<string, PublishedControl> = {
  attribute: { success: 81.2, lmScore: 2.55, metric: 'semantic content: the value string appears in the output', compare: 'success' },
  pos: { success: 90.0, lmScore: 5.16, metric: 'word-level exact match of UPOS tags', compare: 'score' },
  spans: { success: 93.8, lmScore: 2.53, metric: 'the span is a constituent of the output parse', compare: 'success' },
  length: { success: 99.9, lmScore: 2.16, metric: 'output length equals the target (paper: within +-2)', compare: 'success' },
};

export const TGEN_E2E_TEST = { bleu: 65.93, nist: 8.61, meteor: 44.83, rougeL: 68.5, cider: 2.23 };
