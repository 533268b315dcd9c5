import { tf } from '@edkm/core';

/**
 * The DKM iteration on a table of points V [U, d] with weights n [U] (occurrence counts; all
 * ones in plain mode): A = softmax(−‖v − c‖² / τ), C ← (Aᵀ (n ⊙ V)) / (Aᵀ n).
 */
export function sqDistances(v: tf.Tensor2D, c: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => {
    if (v.shape[1] === 1) return v.sub(c.transpose()).square() as tf.Tensor2D; // [U,1] − [1,K]
    const vv = v.square().sum(1, true);
    const cc = c.square().sum(1).expandDims(0);
    return tf.relu(vv.add(cc).sub(tf.matMul(v, c, false, true).mul(2))) as tf.Tensor2D;
  });
}

export function attention(v: tf.Tensor2D, c: tf.Tensor2D, tau: number): tf.Tensor2D {
  return tf.tidy(() => tf.softmax(sqDistances(v, c).div(-tau)) as tf.Tensor2D);
}

/** One centroid update; `n` null means every point weighs 1. */
export function updateCentroids(
  a: tf.Tensor2D,
  v: tf.Tensor2D,
  n: tf.Tensor2D | null,
): tf.Tensor2D {
  return tf.tidy(() => {
    const an = n ? a.mul(n) : a; // [U,K] weighted by counts
    const mass = an.sum(0).expandDims(1); // [K,1]
    return tf.matMul(an, v, true, false).div(tf.maximum(mass, 1e-30)) as tf.Tensor2D;
  });
}

export interface IterationResult {
  /** C_0 … C_T: the initial centroids and those after each iteration (kept, detached). */
  centroids: tf.Tensor2D[];
  iterations: number;
}

/**
 * Runs the centroid iterations outside any gradient tape (reading the largest centroid move
 * after each one, asynchronously, to stop at `epsilon`).
 */
export async function iterate(
  v: tf.Tensor2D,
  n: tf.Tensor2D | null,
  c0: tf.Tensor2D,
  tau: number,
  maxIters: number,
  epsilon: number,
): Promise<IterationResult> {
  const centroids = [tf.keep(c0.clone())];
  for (let t = 1; t <= maxIters; t++) {
    const prev = centroids[t - 1];
    const next = tf.tidy(() => updateCentroids(attention(v, prev, tau), v, n));
    centroids.push(tf.keep(next));
    if (t < maxIters && epsilon > 0) {
      const moved = tf.tidy(() => tf.max(tf.abs(next.sub(prev))));
      const shift = (await moved.data())[0];
      moved.dispose();
      if (shift < epsilon) break;
    }
  }
  return { centroids, iterations: centroids.length - 1 };
}

/**
 * Gradients of the uniquified DKM table with respect to each weight, given the upstream
 * gradient summed per distinct value `gu` [U, d]. A weight w_i with value v_u gets
 *   dL/dw_i = J_uᵀ g_i + h_u
 * where J_u (d×d) is the derivative of its own soft-assigned row A_u C_T through its own
 * attention row, and h_u is its share of the gradient through every centroid update (the same
 * for all copies of a value). Returns J [U, d·d] (row-major, J[a,b] = ∂out_a/∂w_b) and h [U, d].
 *
 * Every sum is written in centred form (differences v − c, c − ĉ) rather than as differences of
 * large products: with many centroids and a small τ the uncentred forms lose most float32 digits.
 */
export function tableGradients(
  gu: tf.Tensor2D,
  v: tf.Tensor2D,
  n: tf.Tensor2D,
  centroids: tf.Tensor2D[],
  tau: number,
): { jacobian: tf.Tensor2D; shared: tf.Tensor2D } {
  return tf.tidy(() => {
    const [u, d] = v.shape;
    const T = centroids.length - 1;
    const cLast = centroids[T];
    const cPrev = centroids[T - 1];
    const twoOverTau = 2 / tau;
    const aOut = attention(v, cPrev, tau); // [U,K]: the output rows' attention (= the last iteration's)
    const out = tf.matMul(aOut, cLast); // [U,d]
    const cHat = tf.matMul(aOut, cPrev); // [U,d]
    // own-row Jacobian: J_u[a,b] = (2/τ) Σ_k A_uk (C_T[k,a] − out_u,a)(C_{T−1}[k,b] − ĉ_u,b)
    const x = cLast.expandDims(0).sub(out.expandDims(1)); // [U,K,d]
    const y = cPrev.expandDims(0).sub(cHat.expandDims(1)); // [U,K,d]
    const ax = x.mul(aOut.expandDims(2));
    const jacobian = (
      d === 1 ? ax.mul(y).sum(1) : tf.matMul(ax, y, true, false).reshape([u, d * d])
    ).mul(twoOverTau) as tf.Tensor2D;

    // centroid path, backwards through the output's attention and every iteration
    let dC: tf.Tensor = tf.matMul(aOut, gu, true, false); // dL/dC_T from out = A C_T: [K,d]
    const dCprev = centroidGradFromLogits(
      softmaxBackward(aOut, tf.matMul(gu, cLast, false, true)),
      diff(v, cPrev),
      twoOverTau,
    );
    let shared: tf.Tensor = tf.zerosLike(v);
    for (let t = T; t >= 1; t--) {
      const c = centroids[t];
      const cIn = centroids[t - 1];
      const a = t === T ? aOut : attention(v, cIn, tau);
      const mass = a.mul(n).sum(0).expandDims(1); // S [K,1]
      const dNum = dC.div(mass); // dL/dN_k, N_k = Σ n_u A_uk v_u, C_k = N_k / S_k
      // per copy of a value: dA1_uk = dN_k · v_u + dS_k = dN_k · (v_u − C_t,k)
      const dA1 = diff(v, c).mul(dNum.expandDims(0)).sum(2);
      shared = shared.add(tf.matMul(a, dNum)); // the value's own term in N_k
      const dZ1 = softmaxBackward(a, dA1);
      const offsets = diff(v, cIn); // [U,K,d]
      shared = shared.sub(dZ1.expandDims(2).mul(offsets).sum(1).mul(twoOverTau)); // through its distances
      const into = centroidGradFromLogits(dZ1.mul(n), offsets, twoOverTau);
      dC = t === T ? into.add(dCprev) : into;
    }
    return { jacobian, shared: shared as tf.Tensor2D };
  });
}

/** v_u − c_k for every pair: [U,K,d]. */
function diff(v: tf.Tensor2D, c: tf.Tensor2D): tf.Tensor3D {
  return v.expandDims(1).sub(c.expandDims(0)) as tf.Tensor3D;
}

/** dZ = A ⊙ (dA − Σ_k A dA) for a row softmax. */
function softmaxBackward(a: tf.Tensor2D, dA: tf.Tensor): tf.Tensor2D {
  return a.mul(dA.sub(a.mul(dA).sum(1, true))) as tf.Tensor2D;
}

/** dL/dC_k from logit gradients dZ of Z = −‖v − c‖²/τ: (2/τ) Σ_u dZ_uk (v_u − c_k). */
function centroidGradFromLogits(
  dZ: tf.Tensor,
  offsets: tf.Tensor3D,
  twoOverTau: number,
): tf.Tensor2D {
  return dZ.expandDims(2).mul(offsets).sum(0).mul(twoOverTau) as tf.Tensor2D;
}

/**
 * Plain DKM on points V [M, d] (the reference; differentiable in V through tfjs autograd):
 * `iterations` updates from the fixed C_0, then W̃ = A C with the last iteration's attention.
 */
export function dkmPlain(
  v: tf.Tensor2D,
  c0: tf.Tensor2D,
  tau: number,
  iterations: number,
): tf.Tensor2D {
  return tf.tidy(() => {
    let c = c0;
    let a = attention(v, c, tau);
    for (let t = 1; t <= iterations; t++) {
      a = attention(v, c, tau);
      c = updateCentroids(a, v, null);
    }
    return tf.matMul(a, c) as tf.Tensor2D;
  });
}
