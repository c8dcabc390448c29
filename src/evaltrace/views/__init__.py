"""What a reader sees: the terminal summary and progress, gated outcomes, CI outputs, the HTML report, trace trees."""
