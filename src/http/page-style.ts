/**
 * The look the engine's own pages share (the demo page and the dashboard): colours, type, header,
 * forms and banners. Each page adds its own layout after it.
 */
export const PAGE_BASE_CSS = `
:root { --fg: #1d2430; --muted: #667085; --line: #e3e7ee; --accent: #2f6fed; --ok: #18864b; --bad: #c4320a; --warn: #b54708; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: #f5f7fa; }
header { display: flex; align-items: baseline; gap: 12px; padding: 14px 24px; background: #fff; border-bottom: 1px solid var(--line); }
header h1 { margin: 0; font-size: 18px; }
header span { color: var(--muted); }
h2 { margin: 0 0 10px; font-size: 15px; }
.row { display: flex; flex-wrap: wrap; gap: 12px; align-items: end; }
label { display: grid; gap: 4px; font-size: 12px; color: var(--muted); }
label.inline { display: flex; align-items: center; gap: 6px; font-size: 13px; color: var(--fg); }
button { font: inherit; padding: 6px 14px; border: 1px solid var(--accent); border-radius: 6px; background: var(--accent); color: #fff; cursor: pointer; }
button.secondary { background: #fff; color: var(--accent); }
button:disabled { opacity: .45; cursor: default; }
.banner.error { background: #fdeae3; color: var(--bad); }
.banner.notice { background: #fff4e0; color: var(--warn); }
.empty { color: var(--muted); }
[hidden] { display: none !important; }
`;
