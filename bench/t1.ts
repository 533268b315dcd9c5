import '@edkm/backend-webgpu';
import { setLinearRoute } from '@edkm/backend-webgpu';
import { useBackend } from '@edkm/core';
import { conformanceCases } from '@edkm/core/testing';
await useBackend('webgpu');
setLinearRoute('reduce');
for (const c of conformanceCases().filter((c) => c.name.startsWith('paletteMatMul')).slice(0, 3)) {
  const r = await c.run();
  console.log(c.name, Array.from(r.actual).map((v, i) => (Math.abs(v - r.expected[i]) < 1e-3 ? '.' : 'X')).join(''));
  console.log(Array.from(r.actual).slice(0,8).map(v=>v.toFixed(3)).join(' '));
  console.log(Array.from(r.expected).slice(0,8).map(v=>v.toFixed(3)).join(' '));
}
