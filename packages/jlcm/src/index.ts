import { Palettizer } from '@edkm/dkm';
import { type JlcmConfig, resolveJlcmConfig } from './config';
import { JlcmTensor } from './layer';

export { type JlcmConfig, type JlcmGrouping, defaultJlcmConfig, resolveJlcmConfig } from './config';
export { type RowGroups, groupRows } from './grouping';
export { type JlcmDescription, type JlcmGroupInfo, type JlcmState, JlcmTensor } from './layer';
export { type CodebookLayout, type Mapping, fitCodebooks, mapWeights } from './mapping';
export { type DeviceMapping, mapWeightsOnDevice } from './device-mapping';

/** A Palettizer layer config that uses JLCM: `{ method: 'jlcm', bits: 2, codebooks: 4 }`. */
export type JlcmLayerConfig = Partial<JlcmConfig> & { method: 'jlcm' };

// importing @edkm/jlcm makes `method: 'jlcm'` usable in @edkm/dkm's Palettizer configs
Palettizer.registerMethod('jlcm', {
  resolve: ({ method: _, ...options }: JlcmLayerConfig) => resolveJlcmConfig(options),
  create: (shape: [number, number], config: JlcmConfig) => new JlcmTensor(shape, config),
});
