"""Full screens: the main page and the drill-down views and forms."""
