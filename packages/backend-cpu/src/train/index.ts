import { NormKernelNames, OptimKernelNames } from '@edkm/core';
import { adamw } from './adamw';
import { clipScale } from './clip-scale';
import { rmsNorm, rmsNormGrad } from './rms-norm';
import { sumSquares } from './sum-squares';

/** The training kernels of this plugin (optimizer; fused model kernels), one per file. */
export const trainKernels = [
  { kernelName: OptimKernelNames.SumSquares, kernelFunc: sumSquares },
  { kernelName: OptimKernelNames.ClipScale, kernelFunc: clipScale },
  { kernelName: OptimKernelNames.AdamW, kernelFunc: adamw },
  { kernelName: NormKernelNames.RmsNorm, kernelFunc: rmsNorm },
  { kernelName: NormKernelNames.RmsNormGrad, kernelFunc: rmsNormGrad },
];
