// Gradients and chained ops (t.sum(), ...) of tfjs's built-in ops: tfjs-core ships them as
// separate side-effect modules that only the tfjs union package imports.
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import '@tensorflow/tfjs-core/dist/public/chained_ops/register_all_chained_ops';
import * as tf from '@tensorflow/tfjs-core';

export { tf };
export * from './errors';
export * from './half';
export * from './ledger';
export * from './plugins';
export * from './random';
export * from './kernels';
export * from './optim';
export * from './norm';
export * from './nearest';
export * from './table';
export * from './lookup-gemv';
export * from './int8';
export * from './int8-linear';
export * from './linear';
export * from './decode';
export * from './kernel-table';
export * from './breathe';
