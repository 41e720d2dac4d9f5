export default function Page() { return "meeshy"; }
