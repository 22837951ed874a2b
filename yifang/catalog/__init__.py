"""Reference data kept as versioned data files and loaded into the database: diseases,
administrative regions (GB/T 2260), reporting organisations and populations."""
