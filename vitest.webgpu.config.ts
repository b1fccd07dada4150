import { defineConfig } from 'vitest/config';

// WebGPU in Node: Dawn (npm `webgpu`) over SwiftShader's Vulkan driver, which ships with Debian's chromium.
// Dawn is a native addon, so the default `forks` pool is required.
process.env.VK_ICD_FILENAMES ??= '/usr/lib/chromium/vk_swiftshader_icd.json';
process.env.NODEVICE_SELECT ??= '1';

export default defineConfig({
  test: {
    include: ['tests/**/*.webgpu.test.ts'],
    environment: 'node',
    pool: 'forks',
    testTimeout: 300_000,
    hookTimeout: 300_000,
    setupFiles: ['tests/setup/webgpu.ts'],
    server: { deps: { inline: [/@tensorflow\//] } },
  },
});
