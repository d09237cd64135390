import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["grammar/**/*.test.ts", "compiler/**/*.test.ts", "cli/**/*.test.ts", "test/**/*.test.ts"],
    testTimeout: 60_000,
  },
});
