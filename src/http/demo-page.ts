export interface DemoPageOptions {
  readonly clientTypes: readonly string[];
  readonly dev: boolean;
  readonly nodeId: string;
}

/** Placeholder; replaced by the full demo page. */
export function demoPageHtml(options: DemoPageOptions): string {
  return `<!doctype html><title>pushgate</title><p>pushgate node ${options.nodeId}</p>`;
}
