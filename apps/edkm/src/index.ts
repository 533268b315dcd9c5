// The reference app's training utilities. The CLI (finetune · export · eval · generate · inspect)
// arrives with @edkm/llama and @edkm/alpaca (issue 12); these parts stand on their own.
export { AdamW, type AdamWState, clipByGlobalNorm, learningRate } from './optim';
export { writeLossPlot } from './plot';
