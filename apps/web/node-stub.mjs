// The esbuild plugin that replaces Node's built-in modules (and `webgpu`, Dawn for Node: a browser
// has navigator.gpu) by a stub whose functions throw, naming the function: the code paths the page
// runs never call them (the model comes in as bytes), and a call by mistake fails loudly.
export const nodeStub = {
  name: 'node-builtins-stub',
  setup(b) {
    b.onResolve(
      { filter: /^(node:.*|fs|path|os|url|crypto|child_process|worker_threads|module|webgpu)$/ },
      (a) => ({
        path: a.path,
        namespace: 'node-stub',
      }),
    );
    b.onLoad({ filter: /.*/, namespace: 'node-stub' }, (a) => ({
      contents: `module.exports = new Proxy({}, { get: (_, k) => k === '__esModule' ? false : () => { throw new Error(${JSON.stringify(a.path)} + '.' + String(k) + ' is not available in a browser'); } });`,
      loader: 'js',
    }));
  },
};
