import { NormKernelNames, OptimKernelNames } from '@edkm/core';
import { adamw } from './adamw';
import { clipScale } from './clip-scale';
import { rmsNormGrad } from './rms-norm-grad';
import { sumSquares } from './sum-squares';

/** The training kernels of this plugin (optimizer; fused model kernels), one per file. */
export const trainKernels = [
  { kernelName: OptimKernelNames.SumSquares, kernelFunc: sumSquares },
  { kernelName: OptimKernelNames.ClipScale, kernelFunc: clipScale },
  { kernelName: OptimKernelNames.AdamW, kernelFunc: adamw },
  { kernelName: NormKernelNames.RmsNormGrad, kernelFunc: rmsNormGrad },
];
