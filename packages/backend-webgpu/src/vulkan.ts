// Dawn (the `webgpu` package) writes its loader warnings ("Couldn't load Vulkan", …) straight to
// the process's stderr from native code when Vulkan is missing; nothing silences them. So the
// plugin checks for the Vulkan loader with the system's own dynamic linker before it loads Dawn.

/**
 * On Linux, Dawn runs on Vulkan and loads `libvulkan.so.1` at run time. Returns why it cannot
 * (the dynamic linker's message), or undefined when the loader loads or the platform is another.
 * `process.dlopen` searches exactly as Dawn's dlopen does; a library that is found fails only
 * later, because it is not a Node add-on.
 */
export function missingVulkanLoader(): string | undefined {
  if (typeof process === 'undefined' || !process.versions?.node || process.platform !== 'linux')
    return undefined;
  // test-only: behave as on a machine without Vulkan (proves the quiet fallback where Vulkan exists)
  if (process.env.EDKM_FAKE_NO_VULKAN === '1')
    return 'no Vulkan loader (EDKM_FAKE_NO_VULKAN=1, a test-only override)';
  try {
    process.dlopen({ exports: {} }, 'libvulkan.so.1');
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    if (/did not self-register|Module did not|napi/i.test(message)) return undefined;
    return `no Vulkan loader (${message}); install one, e.g. apt-get install libvulkan1 mesa-vulkan-drivers`;
  }
  return undefined;
}
