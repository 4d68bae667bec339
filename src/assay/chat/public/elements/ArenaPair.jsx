// Two anonymous answers side by side (assay chat --arena). Props are set by assay/chat/arena.py:
// a, b (answer text so far), streaming, revealed, name_a, name_b, vote, note_a, note_b.
export default function ArenaPair() {
  const label = (side) => {
    const name = side === "a" ? props.name_a : props.name_b;
    const won = props.vote === side;
    const head = "Assistant " + side.toUpperCase();
    return props.revealed ? head + ": " + name + (won ? "  ✓ your pick" : "") : head;
  };
  const col = (side) => (
    <div id={"arena-" + side} data-revealed={props.revealed ? "1" : "0"}
         className="rounded-md border border-border p-3 min-w-0">
      <div id={"arena-" + side + "-label"} className="text-sm font-semibold mb-2 text-muted-foreground">
        {label(side)}
      </div>
      <div id={"arena-" + side + "-text"} className="whitespace-pre-wrap break-words text-sm">
        {(side === "a" ? props.a : props.b) || (props.streaming ? "…" : "")}
      </div>
      <div className="text-xs mt-2 text-muted-foreground">{side === "a" ? props.note_a : props.note_b}</div>
    </div>
  );
  return (
    <div id="arena-pair" data-streaming={props.streaming ? "1" : "0"} className="grid grid-cols-2 gap-3 w-full">
      {col("a")}
      {col("b")}
    </div>
  );
}
