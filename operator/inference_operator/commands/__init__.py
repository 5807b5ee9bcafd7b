"""Command-line front ends: argument parsing, files and printing, around the pure rooms."""
