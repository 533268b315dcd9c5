// Triton's grouped tile order for the GEMM kernels (f32 and int8): consecutive workgroups walk
// `group` rows of output tiles down before moving one tile right, so that the workgroups resident
// at once share the same B columns and a few A rows, and both stay in L2. No imports: the int8
// WGSL generator (loaded without tfjs) uses it too.

/**
 * The tile (row, column) that workgroup (x, y) of a tilesN × tilesM grid computes, in groups of
 * `group` tile rows (0: row by row; the last group may have fewer rows). groupedTileWgsl computes
 * the same in WGSL; the tests check it is a permutation of the tiles.
 */
export function groupedTile(
  x: number,
  y: number,
  tilesM: number,
  tilesN: number,
  group: number,
): [number, number] {
  if (!group) return [y, x];
  const pid = y * tilesN + x;
  const per = group * tilesN;
  const first = Math.floor(pid / per) * group;
  const size = Math.min(tilesM - first, group);
  const r = pid % per;
  return [first + (r % size), Math.floor(r / size)];
}

/**
 * WGSL statements defining `tileM` and `tileN` (groupedTile's row and column) for the linear
 * workgroup index `pid` of a grid of `tilesM` × `tilesN` tiles (WGSL expressions of type `int`),
 * in groups of `group` (> 0) tile rows.
 */
export function groupedTileWgsl(
  group: number,
  pid: string,
  tilesM: string,
  tilesN: string,
  int: 'u32' | 'i32',
): string[] {
  const g = int === 'u32' ? `${group}u` : String(group);
  return [
    `let per = ${g} * ${tilesN};`,
    `let first = (${pid} / per) * ${g};`,
    `let gsize = min(${tilesM} - first, ${g});`,
    `let tileM = first + (${pid} % per) % gsize;`,
    `let tileN = (${pid} % per) / gsize;`,
  ];
}
