"""What happened to each email after it was sent: provider events, bounces, complaints."""
