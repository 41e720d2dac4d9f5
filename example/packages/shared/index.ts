export const shared = "meeshy";
