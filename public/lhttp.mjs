// ES module entry: `import { LHTTP } from "/lhttp.mjs"`. The client itself is lhttp.js (also a classic script).
import "./lhttp.js";
export const LHTTP = globalThis.LHTTP;
export default LHTTP;
